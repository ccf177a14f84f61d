"""`cm campaign launch|pause|resume|status`, `cm step`, `cm group` and `cm rules` against a live server.

Every `cm` call runs the installed executable against pytest-django's live server and a real
Butler repo. No BPS runs here: ``group_run.delay`` only records which groups were sent (so no
broker, eager mode or worker can start one), and the outcome of an attempt is written through
the executor's own recording functions (``submission_claim`` then ``submission_record_result``,
which is what a worker does around BPS).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.authtoken.models import Token

from campaigns import services
from campaigns.execution.runner import submission_claim, submission_record_result
from campaigns.execution.services import campaign_launch
from campaigns.models import Campaign, ErrorRule, Group, GroupTransition, HistoryEntry
from cmclient import ApiError, Client
from lsst_adapter.bps import FailedQuantum, GroupProgress
from tests.conftest import definition

pytestmark = pytest.mark.django_db(transaction=True)

CM = Path(sys.executable).parent / "cm"
PIPELINE = str(Path(settings.BASE_DIR) / "pipelines" / "drp.yaml")
SCIENCE = "exposure.observation_type = 'science' AND detector IN (0, 1) AND exposure.seq_num IN (150, 151)"
NIGHT1, NIGHT2 = "night-20251121", "night-20251122"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def submit_root(settings, tmp_path):
    settings.CM_SUBMIT_ROOT = tmp_path / "submit"


@pytest.fixture(autouse=True)
def sent(monkeypatch) -> list[int]:
    """The ids of the groups sent to a worker, in order; nothing is really sent, so no BPS ever runs."""
    from campaigns.tasks import group_run

    ids: list[int] = []
    monkeypatch.setattr(group_run, "delay", lambda group_id: ids.append(group_id))
    return ids


def token_for(user) -> str:
    return Token.objects.get_or_create(user=user)[0].key


@pytest.fixture
def cm(live_server, tmp_path):
    """Run the installed `cm` as ``as_user`` (CM_URL and CM_TOKEN set)."""
    assert CM.exists(), f"{CM} is missing: run `.venv/bin/pip install --no-deps --no-build-isolation -e .`"

    def run(*args: str, as_user) -> Result:
        child = {k: v for k, v in os.environ.items() if not k.startswith("CM_") and not k.lower().endswith("_proxy")}
        child.update(
            HOME=str(tmp_path / "home"),
            CM_CONFIG=str(tmp_path / "cm-config.json"),
            CM_URL=live_server.url,
            CM_TOKEN=token_for(as_user),
        )
        done = subprocess.run([str(CM), *args], env=child, capture_output=True, text=True, timeout=60, check=False)
        return Result(done.returncode, done.stdout, done.stderr)

    return run


def assert_one_error_line(result: Result) -> str:
    assert result.returncode == 1, result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("cm: error: "), result.stderr
    return lines[0]


def ok(result: Result) -> str:
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


@pytest.fixture
def run_campaign(owner, butler_repo):
    """A two-step campaign on the test repo (step2 after step1, needs approval), unique name, not launched."""

    def make(**overrides) -> Campaign:
        data = definition(
            name=f"cli-{uuid.uuid4().hex[:8]}",
            pipeline=PIPELINE,
            data_query=SCIENCE,
            bps={"compute_site": "local_threads", "wms": "parsl"},
        )
        data.update(overrides)
        return services.campaign_create(user=owner, data=data)

    return make


@pytest.fixture
def launched(run_campaign, owner) -> Campaign:
    campaign = run_campaign()
    return campaign_launch(user=owner, campaign_id=campaign.pk, comment="test launch")


def group_of(campaign: Campaign, step: str, name: str) -> Group:
    return Group.objects.get(step__campaign=campaign, step__name=step, name=name)


def finish_attempt(group: Group, *, failed: int = 0, total: int = 4) -> None:
    """What a worker records around BPS: the claim, then the result (``failed`` quanta of task isr)."""
    submission = submission_claim(group_id=group.pk, worker_name="test-worker")
    assert submission is not None, f"group {group.name} could not be claimed"
    failures = [
        FailedQuantum(
            task_label="isr",
            data_id={"instrument": "DemoCam", "exposure": 2025112100150, "detector": i},
            exception_type="RuntimeError",
            message=f"Timeout reading raw for detector {i}",
        )
        for i in range(failed)
    ]
    progress = GroupProgress(
        total=total,
        succeeded=total - failed,
        failed=failed,
        state="FAILED" if failed else "SUCCEEDED",
        failures=failures,
        finished=True,
    )
    submission_record_result(submission_id=submission.pk, progress=progress)


def rows_after(stdout: str, header: list[str]) -> list[list[str]]:
    """The rows of the table whose header is ``header``, split on runs of 2+ spaces."""
    import re

    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split() == header or re.split(r"\s{2,}", line) == header)
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        rows.append(re.split(r"\s{2,}", line.strip()))
    return rows


GROUP_HEADER = ["STEP", "GROUP", "STATUS", "ATTEMPTS", "QUANTA(done/failed/running/pending/total)"]


# --- launch, status, pause, resume ---------------------------------------------------------------


def test_launch_plans_the_groups_and_status_shows_them(cm, run_campaign, owner, sent):
    campaign = run_campaign()
    before = ok(cm("campaign", "status", campaign.name, as_user=owner))
    assert "No groups yet" in before

    out = ok(cm("campaign", "launch", campaign.name, "--comment", "go", as_user=owner))

    assert f"Launched {campaign.name}: draft → running (version 2). 4 groups planned" in out
    campaign.refresh_from_db()
    assert campaign.status == "running"
    step1 = set(Group.objects.filter(step__campaign=campaign, step__name="step1").values_list("pk", flat=True))
    assert set(sent) == step1  # only the step without dependencies was sent
    assert "go" in HistoryEntry.objects.get(campaign=campaign, action="launch").comment

    status = ok(cm("campaign", "status", campaign.name, as_user=owner))
    assert status.splitlines()[0].startswith(f"{campaign.name}  running  (version 2)  groups: 0/4 done (0%), 0 failed")
    assert rows_after(status, ["STEP", "STATUS", "GROUPS"]) == [
        ["step1", "ready", "2"],
        ["step2", "waiting (needs approval)", "2"],
    ]
    assert rows_after(status, GROUP_HEADER) == [
        ["step1", NIGHT1, "ready", "0", "-"],
        ["step1", NIGHT2, "ready", "0", "-"],
        ["step2", NIGHT1, "waiting", "0", "-"],
        ["step2", NIGHT2, "waiting", "0", "-"],
    ]
    assert "Failures by task" not in status


def test_status_json_is_the_run_status_of_the_api(cm, api, launched, science_user):
    out = ok(cm("campaign", "status", launched.name, "--json", as_user=science_user))  # a public campaign

    shown = json.loads(out)
    assert shown == api(science_user).get(f"/api/v1/campaigns/{launched.pk}/run-status/").json()
    assert [s["name"] for s in shown["steps"]] == ["step1", "step2"]
    assert shown["progress"]["total"] == 4


def test_status_with_a_new_status_still_changes_it(cm, run_campaign, owner):
    campaign = run_campaign()

    out = ok(cm("campaign", "status", campaign.name, "ready", as_user=owner))

    assert "draft → ready" in out
    campaign.refresh_from_db()
    assert campaign.status == "ready"


def test_launching_twice_is_one_line(cm, launched, owner):
    line = assert_one_error_line(cm("campaign", "launch", launched.name, as_user=owner))

    assert "Only a draft or ready campaign can be launched; this one is running." in line


def test_pause_and_resume_change_the_status_and_resume_sends_ready_groups_again(cm, launched, owner, sent):
    sent.clear()

    paused = ok(cm("campaign", "pause", launched.name, "--comment", "site maintenance", as_user=owner))

    assert f"Paused {launched.name}: running → paused" in paused
    launched.refresh_from_db()
    assert launched.status == "paused"
    entry = HistoryEntry.objects.filter(campaign=launched, action="status").latest("at")
    assert entry.changes == {"status": ["running", "paused"]} and entry.comment == "site maintenance"
    assert "paused" in ok(cm("campaign", "status", launched.name, as_user=owner)).splitlines()[0]
    assert sent == []
    line = assert_one_error_line(cm("campaign", "pause", launched.name, as_user=owner))
    assert "Only a running campaign can be paused; this one is paused." in line

    resumed = json.loads(ok(cm("campaign", "resume", launched.name, "--json", as_user=owner)))

    assert resumed["status"] == "running"
    launched.refresh_from_db()
    assert launched.status == "running"
    ready = Group.objects.filter(step__campaign=launched, status="ready").values_list("pk", flat=True)
    assert sorted(sent) == sorted(ready) and len(sent) == 2


# --- groups and approval -------------------------------------------------------------------------


def test_a_failed_group_is_shown_accepted_and_the_next_step_approved(cm, launched, owner, sent):
    finish_attempt(group_of(launched, "step1", NIGHT1), failed=1)
    finish_attempt(group_of(launched, "step1", NIGHT2))
    launched.refresh_from_db()
    assert launched.status == "failed"  # nothing can proceed until someone acts

    status = ok(cm("campaign", "status", launched.name, as_user=owner))
    assert rows_after(status, ["STEP", "STATUS", "GROUPS"])[0] == ["step1", "failed", "2"]
    assert rows_after(status, GROUP_HEADER)[:2] == [
        ["step1", NIGHT1, "failed", "1", "3/1/0/0/4"],
        ["step1", NIGHT2, "succeeded", "1", "4/0/0/0/4"],
    ]
    assert rows_after(status, ["TASK", "EXCEPTION", "FAILED QUANTA"]) == [["isr", "RuntimeError", "1"]]

    shown = ok(cm("group", "show", launched.name, "step1", NIGHT1, as_user=owner))
    assert "Status:             failed" in shown
    assert "Timeout reading raw for detector 0" in shown
    assert "ready → preflight" in shown and "preflight → failed" in shown
    detail = json.loads(ok(cm("group", "show", launched.name, "step1", NIGHT1, "--json", as_user=owner)))
    assert detail["errors"][0]["task_label"] == "isr" and detail["submissions"][0]["state"] == "failed"

    no_comment = cm("group", "accept", launched.name, "step1", NIGHT1, as_user=owner)
    assert no_comment.returncode == 2 and "--comment" in no_comment.stderr

    accepted = ok(
        cm("group", "accept", launched.name, "step1", NIGHT1, "--comment", "detector 0 is bad", as_user=owner)
    )

    assert f"Accepted group step1/{NIGHT1} of {launched.name}: now accepted." in accepted
    group = group_of(launched, "step1", NIGHT1)
    assert group.status == "accepted"
    assert GroupTransition.objects.filter(group=group, to_status="accepted", actor=owner).get().reason == (
        "detector 0 is bad"
    )
    launched.refresh_from_db()
    step1, step2 = launched.steps.order_by("position")
    assert (launched.status, step1.status, step2.status) == ("running", "succeeded", "awaiting_approval")
    sent.clear()

    wrong = assert_one_error_line(cm("step", "approve", launched.name, "step1", "--comment", "x", as_user=owner))
    assert "Step step1 is succeeded, not awaiting approval." in wrong

    approved = ok(cm("step", "approve", launched.name, "step2", "--comment", "step1 looks fine", as_user=owner))

    assert f"Approved step step2 of {launched.name}: now ready (2 groups)." in approved
    step2.refresh_from_db()
    assert (step2.status, step2.approved_by, step2.approval_comment) == ("ready", owner, "step1 looks fine")
    assert sorted(sent) == sorted(step2.groups.values_list("pk", flat=True))
    steps = rows_after(ok(cm("campaign", "status", launched.name, as_user=owner)), ["STEP", "STATUS", "GROUPS"])
    assert steps == [["step1", "succeeded", "2"], ["step2", "ready (approved by alice)", "2"]]


def test_cancel_a_ready_group_then_retry_it(cm, launched, owner, sent):
    cancelled = ok(cm("group", "cancel", launched.name, "step1", NIGHT1, "--comment", "not needed", as_user=owner))

    assert f"Cancelled group step1/{NIGHT1} of {launched.name}: now cancelled." in cancelled
    group = group_of(launched, "step1", NIGHT1)
    assert group.status == "cancelled"
    assert GroupTransition.objects.filter(group=group, to_status="cancelled", actor=owner).get().reason == "not needed"
    again = assert_one_error_line(cm("group", "cancel", launched.name, "step1", NIGHT1, as_user=owner))
    assert "is cancelled and cannot be cancelled" in again
    rescue = assert_one_error_line(cm("group", "rescue", launched.name, "step1", NIGHT1, as_user=owner))
    assert "has no earlier run to rescue" in rescue
    sent.clear()

    retried = ok(cm("group", "retry", launched.name, "step1", NIGHT1, as_user=owner))

    assert f"Retried group step1/{NIGHT1} of {launched.name}: now ready, attempt 1." in retried
    assert sent == [group.pk]


def test_an_accept_of_a_group_that_did_not_fail_is_one_line(cm, launched, owner):
    line = assert_one_error_line(
        cm("group", "accept", launched.name, "step1", NIGHT1, "--comment", "ok", as_user=owner)
    )

    assert "Only a failed group can be accepted" in line
    assert group_of(launched, "step1", NIGHT1).status == "ready"


def test_unknown_step_and_group_names_are_one_line_naming_the_choices(cm, launched, owner):
    step = assert_one_error_line(cm("group", "show", launched.name, "step9", NIGHT1, as_user=owner))
    group = assert_one_error_line(cm("group", "show", launched.name, "step1", "night-1999", as_user=owner))

    assert "has no step 'step9' (steps: step1, step2)" in step
    assert f"step step1 has no group 'night-1999' (groups: {NIGHT1}, {NIGHT2})" in group


def test_science_user_may_look_but_not_act(cm, launched, run_campaign, science_user):
    draft = run_campaign()
    assert ok(cm("campaign", "status", launched.name, as_user=science_user))

    for args in (
        ("campaign", "launch", draft.name),
        ("campaign", "pause", launched.name),
        ("group", "cancel", launched.name, "step1", NIGHT1),
        ("step", "approve", launched.name, "step2", "--comment", "mine"),
        ("rules", "add", "--regex", "Timeout", "--action", "auto-retry"),
    ):
        result = cm(*args, as_user=science_user)
        line = assert_one_error_line(result)
        assert "not change it" in line or "Only staff" in line, (args, line)

    draft.refresh_from_db()
    launched.refresh_from_db()
    assert (draft.status, launched.status) == ("draft", "running")
    assert group_of(launched, "step1", NIGHT1).status == "ready"
    assert not ErrorRule.objects.exists()


# --- error rules ---------------------------------------------------------------------------------


def test_rules_add_list_and_delete(cm, owner, science_user):
    assert ok(cm("rules", "list", as_user=owner)).startswith("No error rules")

    added = ok(
        cm(
            "rules", "add", "--regex", "Timeout .* raw", "--action", "auto-retry", "--task", "isr",
            "--max-retries", "2", "--comment", "flaky storage", as_user=owner,
        )
    )  # fmt: skip
    rule = ErrorRule.objects.get()
    assert f"Added error rule {rule.pk}: isr, /Timeout .* raw/ → auto-retry." in added
    assert (rule.task_label, rule.max_retries, rule.comment, rule.created_by) == ("isr", 2, "flaky storage", owner)
    ok(cm("rules", "add", "--regex", "MemoryError", "--action", "review", as_user=owner))

    listed = ok(cm("rules", "list", as_user=science_user))  # anyone may read the rules
    header = ["ID", "POS", "TASK", "REGEX", "ACTION", "MAX RETRIES", "ENABLED", "MATCHES", "COMMENT"]
    rows = rows_after(listed, header)
    assert [r[2:5] for r in rows] == [["isr", "Timeout .* raw", "auto-retry"], ["*", "MemoryError", "review"]]
    as_json = json.loads(ok(cm("rules", "list", "--json", as_user=owner)))
    assert [r["action"] for r in as_json] == ["auto-retry", "review"]

    bad = assert_one_error_line(cm("rules", "add", "--regex", "(", "--action", "fail", as_user=owner))
    assert "message_regex: Not a valid regular expression" in bad

    deleted = ok(cm("rules", "delete", str(rule.pk), as_user=owner))

    assert f"Deleted error rule {rule.pk}." in deleted
    assert list(ErrorRule.objects.values_list("message_regex", flat=True)) == ["MemoryError"]
    missing = assert_one_error_line(cm("rules", "delete", str(rule.pk), as_user=owner))
    assert missing == f"cm: error: no error rule {rule.pk}"


# --- the Python client ---------------------------------------------------------------------------


def test_client_runs_a_campaign(live_server, run_campaign, owner, sent, monkeypatch, tmp_path):
    monkeypatch.setenv("CM_CONFIG", str(tmp_path / "client-config.json"))
    client = Client(url=live_server.url, token=token_for(owner))
    campaign = run_campaign()

    assert client.launch(campaign.name, comment="go")["status"] == "running"
    status = client.run_status(campaign.name)
    assert [(s["name"], s["status"]) for s in status["steps"]] == [("step1", "ready"), ("step2", "waiting")]
    assert client.step(campaign.name, "step2")["requires_approval"] is True
    assert client.pause(campaign.name)["status"] == "paused"
    assert client.resume(campaign.name, comment="back")["status"] == "running"
    assert client.cancel_group(campaign.name, "step1", NIGHT2)["status"] == "cancelled"
    assert client.group(campaign.name, "step1", NIGHT2)["transitions"][0]["to_status"] == "cancelled"
    with pytest.raises(ApiError) as refused:
        client.accept_group(campaign.name, "step1", NIGHT1, comment="")
    assert refused.value.status == 400 and "comment" in str(refused.value)
    with pytest.raises(ApiError, match="not awaiting approval"):
        client.approve_step(campaign.name, "step2", comment="too early")

    rule = client.create_error_rule("Timeout", "review", task_label="isr")
    assert client.update_error_rule(rule["id"], enabled=False)["enabled"] is False
    assert [r["id"] for r in client.error_rules()] == [rule["id"]]
    client.delete_error_rule(rule["id"])
    assert client.error_rules() == []


def test_plan_shows_groups_and_estimated_quanta_and_changes_nothing(cm, api, run_campaign, science_user, owner):
    campaign = run_campaign()

    out = ok(cm("campaign", "plan", campaign.name, as_user=science_user))  # viewing is enough: nothing is written

    assert out.startswith(f"Plan of {campaign.name} (draft): 4 group(s), about 12 quanta")
    assert rows_after(out, ["GROUP", "QUANTA", "PER TASK", "WHERE"])[0][:3] == [NIGHT1, "4", "step1 4"]
    assert "Step step2: 2 group(s), 4 quanta (upper bound" in out
    assert f"`cm campaign launch {campaign.name}` launches it." in out
    shown = json.loads(ok(cm("campaign", "plan", campaign.name, "--json", as_user=owner)))
    assert shown["quanta_total"] == 12 and shown["steps"][0]["groups"][1]["name"] == NIGHT2
    campaign.refresh_from_db()
    assert campaign.status == "draft" and not Group.objects.filter(step__campaign=campaign).exists()
    assert "no campaign named 'no-such-campaign'" in assert_one_error_line(
        cm("campaign", "plan", "no-such-campaign", as_user=owner)
    )
