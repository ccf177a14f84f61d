"""schemathesis against a live server of the app, for a staff member and for a science user: the API answers
what its OpenAPI schema says, for data of every shape the schema allows (and much that it does not).

Checks: not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance;
zero failures allowed. Bounded and repeatable: a fixed seed, deterministic generation, no example database,
a fixed number of examples per operation, one worker. Path parameters are drawn mostly from the seeded objects
(a launched campaign with steps and groups, an attachment, an error rule, a schedule, a DataID set, a tag
table with rows, flags, a bad-data record), so operations act on real objects and not only on 404s.

The server is pytest-django's live server (DEBUG off), in this process: Celery tasks that the operations
start (launch, retry, resolution into a TAGGED collection...) are recorded instead of sent, since no worker
takes them here and the executor has its own tests; everything else is real.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery.app.task import Task
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token

from campaigns import services as campaign_services
from campaigns.execution.services import campaign_launch, error_rule_create
from campaigns.models import Group, Step
from campaigns.recurring import recurring_create
from tagging.models import Exposure, ExposureFlag, TagColumn
from tagging.services import UploadSource, dataidset_create
from tagging.services.baddata import bad_data_add
from tagging.services.flags import flag_add, flag_import
from tagging.services.tagtables import tag_rows_upsert, tagtable_create
from tests.conftest import definition
from tests.tagging.test_flags_exposurelog_params import _messages

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
SEED = 20251121
EXAMPLES = 5  # per operation: ~95 operations x 2 users within the suite's budget on 2 cores

# Operations left out, and why. Everything else in the schema is exercised.
EXCLUDED = {
    # Reads the whole registry of a real Butler repo per call (seconds); its error paths have their own tests.
    "POST /api/v1/butler-repos/{label}/sync/": "slow: re-reads a Butler registry on every example",
}


@pytest.fixture
def recorded_tasks(monkeypatch) -> list[str]:
    """Celery tasks the operations send, recorded instead of queued (no worker takes them in this test)."""
    sent: list[str] = []

    def record(self, args=None, kwargs=None, **options):
        sent.append(self.name)

    monkeypatch.setattr(Task, "apply_async", record)
    return sent


@pytest.fixture
def world(owner, other_staff, science_user, butler_repo, recorded_tasks, settings, tmp_path) -> dict[str, list]:
    """Objects of every kind the API names in its paths, made through the real services."""
    settings.CM_SUBMIT_ROOT = tmp_path / "submit"
    settings.MEDIA_ROOT = tmp_path / "media"
    pipeline = str(settings.BASE_DIR / "pipelines" / "drp.yaml")
    query = "exposure.observation_type = 'science' AND detector IN (0, 1)"
    launched = campaign_services.campaign_create(
        user=owner,
        data=definition(name="launched", pipeline=pipeline, data_query=query, visibility="public"),
    )
    campaign_launch(user=owner, campaign_id=launched.pk, comment="for the schema run")
    draft = campaign_services.campaign_create(user=owner, data=definition(name="draft", visibility="public"))
    private = campaign_services.campaign_create(user=other_staff, data=definition(name="private-one"))
    attachment = campaign_services.attachment_add(
        user=owner, campaign_id=draft.pk, upload=SimpleUploadedFile("notes.txt", b"seeing was bad"), description="x"
    )
    rule = error_rule_create(user=owner, message_regex="Timeout", action="auto-retry")
    schedule = recurring_create(user=owner, template_id=draft.pk, name_prefix="nightly", cron="0 12 * * *")
    exposures = list(Exposure.objects.filter(repo=butler_repo).order_by("exposure_id")[:4])
    version = dataidset_create(
        user=owner,
        repo_label="demo",
        name="four-exposures",
        reason="schema run",
        visibility="public",
        source=UploadSource(
            kind="records", records=[{"instrument": "DemoCam", "exposure": e.exposure_id} for e in exposures]
        ),
    )
    table = tagtable_create(
        user=owner,
        repo_label="demo",
        name="seeing",
        key_dimensions=["exposure"],
        columns=[{"name": "seeing", "type": "float", "unit": "arcsec"}],
        polarity="reject",
        visibility="public",
    )
    tag_rows_upsert(
        user=owner,
        table_id=table.pk,
        rows=[
            {"instrument": "DemoCam", "exposure": e.exposure_id, "seeing": 0.7 + i / 10}
            for i, e in enumerate(exposures)
        ],
    )
    flag_import(user=owner, repo_label="demo", data=_messages(n=6, edited=2))
    flag_add(
        user=owner, repo_label="demo", exposure=exposures[0].exposure_id, message_text="Dome light on", tags=["dome"]
    )
    record = bad_data_add(
        user=owner,
        repo_label="demo",
        summary="Saturated",
        data_id={"instrument": "DemoCam", "exposure": exposures[1].exposure_id},
    )
    return {
        "campaign": [launched.pk, draft.pk, private.pk],
        "attachment": [attachment.pk],
        "step": list(Step.objects.values_list("pk", flat=True)),
        "group": list(Group.objects.values_list("pk", flat=True)),
        "rule": [rule.pk],
        "schedule": [schedule.pk],
        "dataidset": [version.dataid_set_id],
        "tagtable": [table.pk],
        "column": [*TagColumn.objects.filter(table=table).values_list("key", flat=True), "seeing"],
        "flag": [str(pk) for pk in ExposureFlag.objects.values_list("pk", flat=True)],
        "baddata": [record.pk],
        "exposure": [e.exposure_id for e in exposures],
        "label": ["demo"],
    }


# Which seeded objects each path's parameters are drawn from (schemathesis config: path regex -> parameters).
PATHS = [
    (r"^/api/v1/campaigns/\{id\}/", {"id": "campaign", "attachment_id": "attachment"}),
    (r"^/api/v1/steps/\{id\}/", {"id": "step"}),
    (r"^/api/v1/groups/\{id\}/", {"id": "group"}),
    (r"^/api/v1/error-rules/\{id\}/", {"id": "rule"}),
    (r"^/api/v1/recurring-campaigns/\{id\}/", {"id": "schedule"}),
    (r"^/api/v1/dataid-sets/\{id\}/", {"id": "dataidset"}),
    (r"^/api/v1/tag-tables/\{id\}/", {"id": "tagtable", "column": "column"}),
    (r"^/api/v1/flags/\{id\}/", {"id": "flag"}),
    (r"^/api/v1/bad-data/\{id\}/", {"id": "baddata"}),
    (r"^/api/v1/butler-repos/\{label\}/", {"label": "label"}),
    (r"^/api/v1/exposures/\{id\}/", {"id": "exposure"}),
    (r"^/api/v1/metrics/exposures/\{exposure_id\}/", {"exposure_id": "exposure"}),
]


def _toml_value(value) -> str:
    return json.dumps(value)


def _config(world: dict[str, list]) -> str:
    lines = []
    for kind, values in world.items():
        lines += [f"[dictionaries.{kind}]", f"values = {_toml_value(values)}", ""]
    for regex, params in PATHS:
        bound = ", ".join(
            f'"path.{name}" = {{ dictionary = "{kind}", probability = 0.85 }}' for name, kind in params.items()
        )
        lines += ["[[operations]]", f"include-path-regex = {_toml_value(regex)}", f"parameters = {{ {bound} }}", ""]
    return "\n".join(lines)


def _run(base_url: str, token: str, config: Path, report: Path) -> tuple[int, str, float]:
    binary = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
    command = [
        binary,
        "--config-file",
        str(config),
        "run",
        f"{base_url}/api/schema/",
        "--url",
        base_url,
        "-H",
        f"Authorization: Token {token}",
        "--checks",
        CHECKS,
        "--phases",
        "examples,fuzzing",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        str(SEED),
        "--generation-deterministic",
        "--no-shrink",
        "--workers",
        "1",
        "--request-timeout",
        "60",
        "--no-color",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
        *(arg for name in EXCLUDED for arg in ("--exclude-name", name)),
    ]
    start = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=config.parent)
    return done.returncode, done.stdout + done.stderr, time.monotonic() - start


@pytest.mark.parametrize("who", ["owner", "science_user"])
def test_the_api_answers_what_its_schema_says_for_any_input(request, who, world, live_server, tmp_path):
    user = request.getfixturevalue(who)
    token, _ = Token.objects.get_or_create(user=user)
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config(world))
    code, output, seconds = _run(live_server.url, token.key, config, tmp_path / "junit.xml")
    (tmp_path / "schemathesis.txt").write_text(output)
    summary = output[output.rfind("SUMMARY") :] if "SUMMARY" in output else output[-3000:]
    print(f"schemathesis as {user.username}: {seconds:.0f} s\n{summary}")
    failures = output[output.find("FAILURES") : output.find("WARNINGS")] if "FAILURES" in output else output
    assert code == 0, f"{failures[:60000]}\n(all of it: {tmp_path / 'schemathesis.txt'})"
    assert "Tested: " in output and "failures" not in output.splitlines()[-1], output[-4000:]
