"""The `cm` command and the Python client, against a real server and a real database.

Every `cm` call runs the installed executable in a child process that talks
HTTP to pytest-django's live server; nothing of our own API is mocked.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from rest_framework.authtoken.models import Token

from campaigns import services
from campaigns.models import Campaign, HistoryEntry
from cmclient import ApiError, Client
from tests.conftest import MINIMAL_YAML, PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

CM = Path(sys.executable).parent / "cm"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def token_for(user) -> str:
    return Token.objects.get_or_create(user=user)[0].key


@pytest.fixture
def config_file(tmp_path) -> Path:
    return tmp_path / "cm-config" / "config.json"


@pytest.fixture
def cm(live_server, tmp_path, config_file):
    """Run the installed `cm` as ``as_user`` (CM_URL and CM_TOKEN set), or with only ``env``."""
    assert CM.exists(), f"{CM} is missing: run `.venv/bin/pip install --no-deps --no-build-isolation -e .`"

    def run(*args: str, as_user=None, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
        child = {k: v for k, v in os.environ.items() if not k.startswith("CM_") and not k.lower().endswith("_proxy")}
        child.update(HOME=str(tmp_path / "home"), CM_CONFIG=str(config_file))
        if as_user is not None:
            child.update(CM_URL=live_server.url, CM_TOKEN=token_for(as_user))
        child.update(env or {})
        done = subprocess.run(
            [str(CM), *args], env=child, input=stdin, capture_output=True, text=True, timeout=60, check=False
        )
        return Result(done.returncode, done.stdout, done.stderr)

    return run


def assert_one_error_line(result: Result) -> str:
    """The command failed with exactly one line `cm: error: ...` and no traceback; returns that line."""
    assert result.returncode != 0, result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("cm: error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def table_names(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "STATUS", "OWNER", "UPDATED"]
    return [line.split()[0] for line in lines[1:]]


def api_export(api, user, campaign: Campaign) -> str:
    response = api(user).get(f"/api/v1/campaigns/{campaign.pk}/export/")
    assert response.status_code == 200
    return response.content.decode("utf-8")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- login and configuration ---------------------------------------------------------------------


def test_login_with_password_writes_a_private_config_that_later_commands_use(
    cm, live_server, owner, campaign, config_file
):
    result = cm("login", "--url", live_server.url, "--username", "alice", "--password-stdin", stdin=PASSWORD + "\n")

    assert result.returncode == 0, result.stderr
    assert "Logged in" in result.stdout
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    saved = json.loads(config_file.read_text())
    assert saved == {"url": live_server.url, "token": Token.objects.get(user=owner).key}
    assert saved["token"] not in result.stdout

    listed = cm("campaign", "list")  # no CM_URL, no CM_TOKEN: only the config file
    assert listed.returncode == 0, listed.stderr
    assert table_names(listed.stdout) == ["w48-minidrp"]


def test_login_tightens_the_mode_of_an_existing_config_file(cm, live_server, owner, config_file):
    config_file.parent.mkdir(parents=True)
    config_file.write_text("{}")
    config_file.chmod(0o644)

    result = cm("login", "--url", live_server.url, "--token", token_for(owner))

    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    assert json.loads(config_file.read_text())["token"] == token_for(owner)


def test_login_with_a_wrong_password_fails_cleanly_and_writes_nothing(cm, live_server, owner, config_file):
    result = cm("login", "--url", live_server.url, "-u", "alice", "--password-stdin", stdin="wrong\n")

    line = assert_one_error_line(result)
    assert "Unable to log in with provided credentials" in line
    assert not config_file.exists()


def test_login_with_a_bad_token_is_refused(cm, live_server, owner, config_file):
    line = assert_one_error_line(cm("login", "--url", live_server.url, "--token", "not-a-token"))
    assert "refused this token" in line
    assert not config_file.exists()


def test_missing_token_says_how_to_get_one(cm, live_server, owner):
    result = cm("campaign", "list", env={"CM_URL": live_server.url})

    assert assert_one_error_line(result) == "cm: error: no token: run `cm login` or set CM_TOKEN"


def test_invalid_token_is_one_line_that_suggests_logging_in(cm, live_server, owner):
    result = cm("campaign", "list", env={"CM_URL": live_server.url, "CM_TOKEN": "0" * 40})

    line = assert_one_error_line(result)
    assert "Invalid token" in line
    assert "cm login" in line


def test_unreachable_server_is_one_clean_line(cm, owner):
    url = f"http://127.0.0.1:{free_port()}"

    result = cm("campaign", "list", env={"CM_URL": url, "CM_TOKEN": "x"})

    assert assert_one_error_line(result) == f"cm: error: cannot reach {url}: Connection refused"


def test_usage_errors_are_one_line_with_exit_code_2(cm, owner):
    result = cm("campaign", "frobnicate", as_user=owner)

    assert result.returncode == 2
    assert "invalid choice" in assert_one_error_line(result)


# --- reading -------------------------------------------------------------------------------------


@pytest.fixture
def three_visibilities(make_campaign):
    make_campaign(name="open-run")
    make_campaign(name="staff-run", visibility="staff")
    make_campaign(name="private-run", visibility="private")


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("owner", {"open-run", "staff-run", "private-run"}),
        ("other_staff", {"open-run", "staff-run"}),
        ("science_user", {"open-run"}),
    ],
)
def test_list_table_shows_only_what_the_user_may_see(cm, three_visibilities, request, who, expected):
    result = cm("campaign", "list", as_user=request.getfixturevalue(who))

    assert result.returncode == 0, result.stderr
    assert set(table_names(result.stdout)) == expected
    assert "alice" in result.stdout and "mini-drp" in result.stdout and "draft" in result.stdout


def test_list_json_shows_only_what_the_science_user_may_see(cm, three_visibilities, science_user):
    result = cm("--json", "campaign", "list", as_user=science_user)

    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["name"] for row in rows] == ["open-run"]
    assert rows[0]["owner"] == "alice"
    assert rows[0]["version"] == 1


def test_list_filters_by_status_and_search(cm, make_campaign, owner):
    make_campaign(name="psf-check", reason="Check the PSF")
    ready = make_campaign(name="calib-run", reason="Flats", campaign_type="calibration")
    services.campaign_set_status(user=owner, campaign_id=ready.pk, status="ready")

    by_status = cm("campaign", "list", "--status", "ready", "--json", as_user=owner)
    by_search = cm("campaign", "list", "--search", "psf", as_user=owner)
    by_type = cm("campaign", "list", "--type", "calibration", as_user=owner)

    assert [r["name"] for r in json.loads(by_status.stdout)] == ["calib-run"]
    assert table_names(by_search.stdout) == ["psf-check"]
    assert table_names(by_type.stdout) == ["calib-run"]


def test_list_with_an_unknown_status_is_one_line_naming_the_filter(cm, campaign, owner):
    line = assert_one_error_line(cm("campaign", "list", "--status", "bogus", as_user=owner))

    assert line == "cm: error: status: Select a valid choice. bogus is not one of the available choices."


def test_list_puts_the_most_recently_updated_campaign_first(cm, make_campaign, owner):
    first = make_campaign(name="first-run")
    make_campaign(name="second-run")
    services.campaign_update(user=owner, campaign_id=first.pk, version=1, data={"scope": "tract 1"})

    result = cm("campaign", "list", as_user=owner)

    assert table_names(result.stdout) == ["first-run", "second-run"]


def test_show_prints_a_readable_campaign(cm, campaign, science_user):
    result = cm("campaign", "show", "w48-minidrp", as_user=science_user)

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"w48-minidrp  (id {campaign.pk}, version 1)" in out
    assert "Butler repo:" in out and "demo" in out
    assert "Input collections:  DemoCam/raw/all" in out
    assert "Check the new PSF model on one week of data" in out
    assert "1. step1" in out
    assert "2. step2  (subset step2; after step1; needs approval; by night)" in out
    assert "You may edit:       no" in out


def test_show_json_is_the_api_detail(cm, api, campaign, owner):
    result = cm("campaign", "show", "w48-minidrp", "--json", as_user=owner)

    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["id"] == campaign.pk
    assert [s["name"] for s in shown["steps"]] == ["step1", "step2"]
    assert shown == api(owner).get(f"/api/v1/campaigns/{campaign.pk}/").json()


def test_unknown_campaign_name_is_one_line_naming_it(cm, campaign, owner):
    result = cm("campaign", "show", "no-such-campaign", as_user=owner)

    line = assert_one_error_line(result)
    assert "no campaign named 'no-such-campaign'" in line


def test_a_campaign_the_user_may_not_see_is_reported_as_unknown(cm, make_campaign, science_user):
    make_campaign(name="private-run", visibility="private")

    line = assert_one_error_line(cm("campaign", "show", "private-run", as_user=science_user))
    assert "no campaign named 'private-run'" in line


def test_history_lists_who_did_what(cm, campaign, owner):
    cm("campaign", "status", "w48-minidrp", "ready", "--comment", "Looks good", as_user=owner)

    result = cm("campaign", "history", "w48-minidrp", as_user=owner)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["WHEN", "WHO", "ACTION", "VERSION", "CHANGES", "COMMENT"]
    assert "Status: draft → ready" in lines[1] and "Looks good" in lines[1] and "alice" in lines[1]
    assert " create " in lines[2]


def test_steps_lists_steps_in_order(cm, campaign, owner):
    result = cm("campaign", "steps", "w48-minidrp", as_user=owner)

    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    assert rows == [
        ["1", "step1", "step1", "-", "-", "by", "night", "-", "0"],
        ["2", "step2", "step2", "step1", "required", "by", "night", "-", "0"],
    ]


# --- writing -------------------------------------------------------------------------------------


def test_create_from_yaml_makes_the_campaign_with_its_two_steps(cm, owner, demo_repo, tmp_path):
    path = tmp_path / "w48.yaml"
    path.write_text(MINIMAL_YAML)

    result = cm("campaign", "create", "--from-yaml", str(path), as_user=owner)

    assert result.returncode == 0, result.stderr
    assert "Created campaign w48-minidrp" in result.stdout
    campaign = Campaign.objects.get(name="w48-minidrp")
    assert campaign.owner == owner
    assert campaign.input_collections == ["DemoCam/raw/all"]
    steps = list(campaign.steps.order_by("position"))
    assert [s.name for s in steps] == ["step1", "step2"]
    assert [d.name for d in steps[1].depends_on.all()] == ["step1"]
    assert steps[1].requires_approval


def test_create_reads_yaml_from_standard_input(cm, owner, demo_repo):
    result = cm("campaign", "create", "--from-yaml", "-", "--json", as_user=owner, stdin=MINIMAL_YAML)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["name"] == "w48-minidrp"
    assert Campaign.objects.filter(name="w48-minidrp").exists()


def test_create_from_broken_yaml_names_the_line_and_column(cm, owner, demo_repo, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nreason: [unclosed\ncampaign_type: drp\n")

    line = assert_one_error_line(cm("campaign", "create", "--from-yaml", str(path), as_user=owner))

    assert str(path) in line
    assert "line 3, column" in line
    assert not Campaign.objects.filter(name="broken").exists()


def test_create_with_an_invalid_definition_names_the_field(cm, owner, demo_repo, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(MINIMAL_YAML.replace("butler_repo: demo", "butler_repo: nowhere"))

    line = assert_one_error_line(cm("campaign", "create", "--from-yaml", str(path), as_user=owner))

    assert "butler_repo" in line
    assert not Campaign.objects.exists()


def test_create_from_a_missing_file_is_a_clean_error(cm, owner, tmp_path):
    missing = tmp_path / "nope.yaml"

    line = assert_one_error_line(cm("campaign", "create", "--from-yaml", str(missing), as_user=owner))

    assert line == f"cm: error: cannot read {missing}: no such file"


def test_edit_set_reason_bumps_the_version_and_is_recorded_in_history(cm, campaign, owner):
    result = cm(
        "campaign",
        "edit",
        "w48-minidrp",
        "--set",
        "reason=Retry with the fixed PSF",
        "--comment",
        "PSF fix",
        as_user=owner,
    )

    assert result.returncode == 0, result.stderr
    assert "version 1 → 2" in result.stdout
    campaign.refresh_from_db()
    assert campaign.version == 2
    assert campaign.reason == "Retry with the fixed PSF"
    entry = HistoryEntry.objects.filter(campaign=campaign, action="edit").get()
    assert entry.actor == owner
    assert entry.comment == "PSF fix"
    assert entry.changes["reason"] == ["Check the new PSF model on one week of data", "Retry with the fixed PSF"]


def test_edit_set_takes_comma_lists_and_single_bps_options(cm, campaign, owner):
    campaign_bps_before = dict(campaign.bps)

    result = cm(
        "campaign",
        "edit",
        "w48-minidrp",
        "--set",
        "input_collections=DemoCam/raw/all, DemoCam/calib",
        "--set",
        "bps.request_memory=4096",
        "--set",
        "bps.wms=parsl",
        as_user=owner,
    )

    assert result.returncode == 0, result.stderr
    campaign.refresh_from_db()
    assert campaign.input_collections == ["DemoCam/raw/all", "DemoCam/calib"]
    assert campaign.bps == {**campaign_bps_before, "request_memory": 4096, "wms": "parsl"}
    assert campaign.version == 2


def test_edit_from_yaml_changes_the_fields_in_the_file(cm, campaign, owner, tmp_path):
    path = tmp_path / "changes.yaml"
    path.write_text("scope: tract 9813 only\nvisibility: staff\n")

    result = cm("campaign", "edit", "w48-minidrp", "--from-yaml", str(path), as_user=owner)

    assert result.returncode == 0, result.stderr
    campaign.refresh_from_db()
    assert (campaign.scope, campaign.visibility, campaign.version) == ("tract 9813 only", "staff", 2)


def test_edit_with_an_unknown_field_is_refused(cm, campaign, owner):
    line = assert_one_error_line(cm("campaign", "edit", "w48-minidrp", "--set", "colour=blue", as_user=owner))

    assert "colour: Unknown field 'colour'." in line
    campaign.refresh_from_db()
    assert campaign.version == 1


def test_edit_based_on_a_stale_version_says_who_changed_what(cm, campaign, owner):
    assert cm("campaign", "edit", "w48-minidrp", "--set", "scope=tract 1", as_user=owner).returncode == 0

    result = cm("campaign", "edit", "w48-minidrp", "--set", "reason=Late edit", "--version", "1", as_user=owner)

    line = assert_one_error_line(result)
    assert "changed after you loaded version 1" in line
    assert "alice changed scope" in line
    campaign.refresh_from_db()
    assert campaign.reason == "Check the new PSF model on one week of data"


def test_science_user_cannot_edit_campaign_from_cli(cm, campaign, science_user):
    result = cm("campaign", "edit", "w48-minidrp", "--set", "reason=Mine now", as_user=science_user)

    line = assert_one_error_line(result)
    assert "may view this campaign but not change it" in line
    campaign.refresh_from_db()
    assert (campaign.reason, campaign.version) == ("Check the new PSF model on one week of data", 1)


def test_clone_makes_a_draft_copy_owned_by_the_caller(cm, campaign, other_staff):
    result = cm("campaign", "clone", "w48-minidrp", "w49-minidrp", as_user=other_staff)

    assert result.returncode == 0, result.stderr
    assert "Cloned w48-minidrp to w49-minidrp" in result.stdout
    assert "writing to u/bob/w49-minidrp." in result.stdout  # its own, derived from the new name
    clone = Campaign.objects.get(name="w49-minidrp")
    assert clone.owner == other_staff and clone.output_collection == "u/bob/w49-minidrp"
    chosen = cm(
        "campaign", "clone", "w48-minidrp", "w50", "--output-collection", "DemoCam/runs/w50", as_user=other_staff
    )
    assert chosen.returncode == 0, chosen.stderr
    assert Campaign.objects.get(name="w50").output_collection == "DemoCam/runs/w50"
    refused = cm(
        "campaign", "clone", "w48-minidrp", "w51", "--output-collection", "DemoCam/runs/w50", as_user=other_staff
    )
    assert refused.returncode != 0 and "output collection of another campaign" in refused.stderr
    assert clone.status == "draft"
    assert [s.name for s in clone.steps.order_by("position")] == ["step1", "step2"]
    assert clone.pipeline == campaign.pipeline


def test_clone_to_a_taken_name_is_refused(cm, make_campaign, owner):
    make_campaign()
    make_campaign(name="taken")

    line = assert_one_error_line(cm("campaign", "clone", "w48-minidrp", "taken", as_user=owner))
    assert "name" in line


def test_export_to_a_file_equals_the_api_export_and_imports_back(cm, api, campaign, owner, tmp_path):
    path = tmp_path / "export.yaml"

    result = cm("campaign", "export", "w48-minidrp", "-o", str(path), as_user=owner)

    assert result.returncode == 0, result.stderr
    exported = path.read_text(encoding="utf-8")
    assert exported == api_export(api, owner, campaign)
    assert yaml.safe_load(exported)["steps"][1]["depends_on"] == ["step1"]

    # Round trip: the exported file, renamed, creates an identical campaign.
    copy = tmp_path / "copy.yaml"
    copy.write_text(exported.replace("name: w48-minidrp", "name: w48-copy", 1))
    assert cm("campaign", "create", "--from-yaml", str(copy), as_user=owner).returncode == 0
    again = api_export(api, owner, Campaign.objects.get(name="w48-copy"))
    assert again == exported.replace("name: w48-minidrp", "name: w48-copy", 1)


def test_export_without_a_file_prints_the_yaml(cm, api, campaign, owner):
    result = cm("campaign", "export", "w48-minidrp", as_user=owner)

    assert result.returncode == 0, result.stderr
    assert result.stdout == api_export(api, owner, campaign)


def test_status_change_moves_the_campaign_and_records_it(cm, campaign, owner):
    result = cm("campaign", "status", "w48-minidrp", "ready", "--comment", "Reviewed", as_user=owner)

    assert result.returncode == 0, result.stderr
    assert "draft → ready" in result.stdout
    campaign.refresh_from_db()
    assert (campaign.status, campaign.version) == ("ready", 2)
    entry = HistoryEntry.objects.filter(campaign=campaign, action="status").get()
    assert entry.changes == {"status": ["draft", "ready"]}
    assert entry.comment == "Reviewed"


def test_a_status_change_the_rules_forbid_is_one_line(cm, campaign, owner):
    line = assert_one_error_line(cm("campaign", "status", "w48-minidrp", "succeeded", as_user=owner))

    assert "cannot become succeeded" in line
    campaign.refresh_from_db()
    assert campaign.status == "draft"


def test_archive_hides_the_campaign_from_the_default_list(cm, campaign, owner):
    result = cm("campaign", "archive", "w48-minidrp", as_user=owner)

    assert result.returncode == 0, result.stderr
    assert "Archived w48-minidrp" in result.stdout
    campaign.refresh_from_db()
    assert campaign.archived
    assert Campaign.objects.filter(pk=campaign.pk).exists()  # archived, never deleted

    assert cm("campaign", "list", as_user=owner).stdout.strip() == "No campaigns."
    with_archived = cm("campaign", "list", "--archived", as_user=owner).stdout
    assert "w48-minidrp" in with_archived and "(archived)" in with_archived
    # Archived campaigns are still found by name.
    assert cm("campaign", "show", "w48-minidrp", as_user=owner).returncode == 0
    assert cm("campaign", "restore", "w48-minidrp", as_user=owner).returncode == 0
    campaign.refresh_from_db()
    assert not campaign.archived


def test_science_user_cannot_archive_from_cli(cm, campaign, science_user):
    line = assert_one_error_line(cm("campaign", "archive", "w48-minidrp", as_user=science_user))

    assert "not change it" in line
    campaign.refresh_from_db()
    assert not campaign.archived


# --- the Python client, in process ---------------------------------------------------------------


@pytest.fixture
def client_for(live_server, monkeypatch, tmp_path):
    monkeypatch.setenv("CM_CONFIG", str(tmp_path / "client-config.json"))
    monkeypatch.delenv("CM_URL", raising=False)
    monkeypatch.delenv("CM_TOKEN", raising=False)

    def make(user) -> Client:
        return Client(url=live_server.url, token=token_for(user))

    return make


def test_client_campaigns_follows_every_page(client_for, make_campaign, owner):
    for i in range(5):
        make_campaign(name=f"run-{i}")

    rows = client_for(owner).campaigns(page_size=2, sort="name")

    assert [r["name"] for r in rows] == [f"run-{i}" for i in range(5)]


def test_client_update_needs_a_version_and_refuses_a_stale_one(client_for, campaign, owner):
    client = client_for(owner)
    with pytest.raises(ValueError, match="version"):
        client.update_campaign("w48-minidrp", reason="No version")

    updated = client.update_campaign("w48-minidrp", version=1, reason="First", comment="one")
    assert updated["version"] == 2

    with pytest.raises(ApiError) as stale:
        client.update_campaign("w48-minidrp", version=1, reason="Second")
    assert stale.value.status == 409
    assert stale.value.payload["code"] == "stale_version"
    assert "alice changed reason" in str(stale.value)
    assert "\n" not in str(stale.value)


def test_client_field_errors_read_as_field_colon_message(client_for, owner, demo_repo):
    with pytest.raises(ApiError) as error:
        client_for(owner).create_campaign({"name": "x", "campaign_type": "nonsense"})

    assert error.value.status == 400
    assert "campaign_type: " in str(error.value)
    assert isinstance(error.value.payload, dict) and "campaign_type" in error.value.payload


def test_client_round_trips_a_campaign_through_yaml(client_for, campaign, owner):
    client = client_for(owner)

    text = client.export_campaign("w48-minidrp")
    created = client.create_campaign_from_yaml(text.replace("name: w48-minidrp", "name: w48-again", 1))

    assert created["name"] == "w48-again"
    assert [s["name"] for s in client.steps("w48-again")] == ["step1", "step2"]
    assert client.history("w48-again")[0]["action"] == "create"
    assert client.campaign(created["id"])["name"] == "w48-again"


def test_client_clone_status_and_archive(client_for, campaign, owner):
    client = client_for(owner)

    clone = client.clone_campaign("w48-minidrp", "w48-clone", comment="for a rerun")
    ready = client.set_status("w48-clone", "ready")
    archived = client.archive_campaign("w48-clone")

    assert clone["status"] == "draft"
    assert ready["status"] == "ready"
    assert archived["archived"] is True
    assert [c["name"] for c in client.campaigns()] == ["w48-minidrp"]
    assert {c["name"] for c in client.campaigns(archived="all")} == {"w48-minidrp", "w48-clone"}


def test_client_reads_the_config_written_by_login(cm, live_server, owner, campaign, monkeypatch, config_file):
    assert cm("login", "--url", live_server.url, "--token", token_for(owner)).returncode == 0
    monkeypatch.setenv("CM_CONFIG", str(config_file))
    monkeypatch.delenv("CM_URL", raising=False)
    monkeypatch.delenv("CM_TOKEN", raising=False)

    client = Client()

    assert client.url == live_server.url
    assert [c["name"] for c in client.campaigns()] == ["w48-minidrp"]


def test_client_never_sends_a_saved_token_to_another_server(live_server, owner, monkeypatch, config_file):
    config_file.parent.mkdir(parents=True)
    config_file.write_text(json.dumps({"url": live_server.url, "token": token_for(owner)}))
    monkeypatch.setenv("CM_CONFIG", str(config_file))
    monkeypatch.delenv("CM_TOKEN", raising=False)
    monkeypatch.setenv("CM_URL", "http://elsewhere.invalid")

    with pytest.raises(ApiError, match="no token"):
        Client().campaigns()


def test_client_reports_an_unreachable_server():
    url = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(ApiError) as error:
        Client(url=url, token="x").campaign("w48-minidrp")

    assert str(error.value) == f"cannot reach {url}: Connection refused"
    assert error.value.status is None


@pytest.mark.parametrize("method", ["share_dataids", "share_tag_table"])
@pytest.mark.parametrize("who", [{}, {"user": "bob", "group": "qa"}])
def test_share_needs_exactly_one_of_user_or_group_before_any_request(method, who):
    from cmclient import Client

    client = Client("http://127.0.0.1:9", "token", use_config=False)  # nothing listens there
    with pytest.raises(ValueError, match=rf"{method}\(\) needs exactly one of user= or group="):
        getattr(client, method)(7, **who)


def test_logout_revokes_the_token_on_the_server_and_removes_the_config(cm, live_server, owner, config_file):
    login = cm("login", "--url", live_server.url, "--username", "alice", "--password-stdin", stdin=PASSWORD + "\n")
    assert login.returncode == 0, login.stderr
    key = Token.objects.get(user=owner).key

    result = cm("logout")

    assert result.returncode == 0, result.stderr
    assert f"Revoked your API token at {live_server.url} and removed {config_file}." in result.stdout
    assert not Token.objects.filter(key=key).exists()
    assert not config_file.exists()
    again = cm("campaign", "list", env={"CM_URL": live_server.url, "CM_TOKEN": key})
    assert "Invalid token" in assert_one_error_line(again)
