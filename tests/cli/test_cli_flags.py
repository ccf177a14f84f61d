"""`cm flags ...` and `cm baddata ...` against a real server, database and Butler repo (child processes)."""

# ruff: noqa: F811 - pytest fixtures imported from test_cli are named as test arguments

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tagging.models import BadDataRecord, ExposureFlag
from tests.cli.test_cli import assert_one_error_line, cm, config_file, fast_password_hasher, token_for  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

EXPOSURE = 2025112100151
SAMPLE = Path(__file__).parent.parent / "tagging" / "data" / "exposurelog-messages.json"


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_add_list_edit_history_and_invalidate_a_flag(cm, owner, science_user, butler_repo):
    added = json.loads(
        ok(
            cm(
                "--json",
                "flags",
                "add",
                "--repo",
                "demo",
                "--obs-id",
                "DC_O_20251121_000151",
                "--message",
                "Dome light on",
                "--flag",
                "junk",
                "--tag",
                "dome",
                "--level",
                "30",
                as_user=owner,
            )
        )
    )
    assert (added["exposure"], added["exposure_flag"], added["tags"], added["user_agent"]) == (
        EXPOSURE,
        "junk",
        ["dome"],
        "cm",
    )
    listing = ok(cm("flags", "list", "--flag", "junk", as_user=science_user))
    assert "DC_O_20251121_000151" in listing and added["id"][:8] in listing
    edited = ok(cm("flags", "edit", added["id"][:8], "--message", "Unusable", as_user=owner))
    assert "New version" in edited
    history = json.loads(ok(cm("--json", "flags", "history", added["id"], as_user=science_user)))
    assert [h["message_text"] for h in history] == ["Dome light on", "Unusable"]
    assert [h["is_valid"] for h in history] == [False, True]
    ok(cm("flags", "invalidate", history[1]["id"], as_user=owner))
    assert ok(cm("flags", "list", as_user=science_user)).strip() == "No flags."
    everything = json.loads(ok(cm("--json", "flags", "list", "--all", as_user=science_user)))
    assert len(everything) == 2 and not any(f["is_valid"] for f in everything)


def test_science_users_cannot_add_flags(cm, science_user, butler_repo):
    result = cm("flags", "add", "--repo", "demo", "--exposure", str(EXPOSURE), "--message", "x", as_user=science_user)
    assert "staff" in assert_one_error_line(result)
    assert not ExposureFlag.objects.exists()


def test_import_is_idempotent_and_a_bad_file_names_index_and_key(cm, owner, butler_repo, tmp_path):
    assert "2 new" in ok(cm("flags", "import", str(SAMPLE), "--repo", "demo", as_user=owner))
    assert "2 already here" in ok(cm("flags", "import", str(SAMPLE), "--repo", "demo", as_user=owner))
    bad = json.loads(SAMPLE.read_text())
    bad[0]["seq_num"] = -1
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    result = cm("flags", "import", str(path), "--repo", "demo", as_user=owner)
    assert result.returncode == 1
    assert "index 0" in result.stderr and "seq_num" in result.stderr and "nothing was stored" in result.stderr
    assert ExposureFlag.objects.count() == 2


def test_record_list_and_follow_bad_data(cm, owner, science_user, butler_repo):
    out = ok(
        cm(
            "baddata",
            "add",
            "--repo",
            "demo",
            "--summary",
            "Hot amp",
            "--data-id",
            f"instrument=DemoCam,exposure={EXPOSURE},detector=R22_S11",
            as_user=owner,
        )
    )
    record = BadDataRecord.objects.get()
    assert f"Recorded bad data {record.pk}" in out and record.detector == 4
    assert "Hot amp" in ok(cm("baddata", "list", "--status", "open", as_user=science_user))
    result = cm("baddata", "set-status", str(record.pk), "explained", as_user=owner)
    assert "explanation" in assert_one_error_line(result)
    ok(cm("baddata", "set-status", str(record.pk), "explained", "--explanation", "Amp C10 hot", as_user=owner))
    assert "explained" in ok(cm("baddata", "list", as_user=science_user))
    assert "staff" in assert_one_error_line(cm("baddata", "set-status", str(record.pk), "fixed", as_user=science_user))
