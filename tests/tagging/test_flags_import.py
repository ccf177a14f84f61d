"""Import of an exposure-log export: the shared sample, idempotence, invalidations brought by a later
export, and bad files whose errors name the index and the key with nothing stored."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied

from core.errors import InputError
from tagging.models import ExposureFlag
from tagging.selectors_flags import flag_history, junk_exposures
from tagging.services.flags import flag_import

from .helpers import NIGHT, exposure_id

pytestmark = pytest.mark.django_db

SAMPLE = Path("/work/shared/samples/exposurelog-messages.json")
if not SAMPLE.exists():  # the sample is copied next to the tests on machines without the shared folder
    SAMPLE = Path(__file__).parent / "data" / "exposurelog-messages.json"


def sample() -> list[dict]:
    return json.loads(SAMPLE.read_text())


def on_test_repo(messages: list[dict], seq: int = 152) -> list[dict]:
    """The sample moved to an exposure the small test repo has (it stops at seq 153)."""
    moved = copy.deepcopy(messages)
    for m in moved:
        m["seq_num"], m["obs_id"] = seq, f"DC_O_{NIGHT}_{seq:06d}"
    return moved


def test_the_sample_export_imports_with_its_parent_chain(owner, butler_repo):
    counts = flag_import(user=owner, repo_label="demo", data=SAMPLE.read_bytes())
    assert counts == {"read": 2, "created": 2, "updated": 0, "unchanged": 0, "not_in_repo": 2}
    old, new = (ExposureFlag.objects.get(pk=m["id"]) for m in sample())
    assert not old.is_valid and old.date_invalidated is not None and old.exposure_flag == "questionable"
    assert new.is_valid and new.parent_id == old.pk and new.exposure_flag == "junk" and new.level == 40
    assert new.tags == ["dome", "scattered-light"] and new.urls == ["https://jira.example.org/browse/OBS-123"]
    assert (new.user_id, new.user_agent, new.is_human, new.author) == ("alice", "LOVE", True, None)
    assert new.exposure == 2025112100156  # not in the small test repo: the LSST numbering day_obs * 100000 + seq
    assert [f.pk for f in flag_history(flag=new)] == [old.pk, new.pk]


def test_importing_twice_changes_nothing(owner, butler_repo):
    flag_import(user=owner, repo_label="demo", data=SAMPLE.read_bytes())
    before = list(ExposureFlag.objects.order_by("pk").values())
    counts = flag_import(user=owner, repo_label="demo", data=SAMPLE.read_bytes())
    assert counts == {"read": 2, "created": 0, "updated": 0, "unchanged": 2, "not_in_repo": 0}
    assert list(ExposureFlag.objects.order_by("pk").values()) == before


def test_a_message_about_an_exposure_of_the_repo_gets_its_mirror_id_and_counts_as_junk(owner, butler_repo):
    counts = flag_import(user=owner, repo_label="demo", data=on_test_repo(sample()))
    assert counts["not_in_repo"] == 0
    assert list(junk_exposures(butler_repo).values_list("exposure_id", flat=True)) == [exposure_id(152)]


def test_a_later_export_brings_the_invalidation(owner, butler_repo):
    messages = on_test_repo(sample())
    flag_import(user=owner, repo_label="demo", data=messages)
    messages[1]["is_valid"] = False
    messages[1]["date_invalidated"] = "2025-11-23T10:00:00.000"
    counts = flag_import(user=owner, repo_label="demo", data=messages)
    assert (counts["updated"], counts["unchanged"]) == (1, 1)
    assert not ExposureFlag.objects.get(pk=messages[1]["id"]).is_valid
    assert not junk_exposures(butler_repo).exists()


def broken(change) -> list[dict]:
    messages = on_test_repo(sample())
    change(messages)
    return messages


BAD_FILES = [
    (lambda m: m[1].pop("obs_id"), 1, "obs_id", "missing"),
    (lambda m: m[0].update(day_obs="2025-11-21"), 0, "day_obs", "YYYYMMDD"),
    (lambda m: m[1].update(exposure_flag="awful"), 1, "exposure_flag", "one of"),
    (lambda m: m[1].update(id="not-a-uuid"), 1, "id", "UUID"),
    (lambda m: m[0].update(date_added="yesterday"), 0, "date_added", "ISO 8601"),
    (lambda m: m[1].update(parent_id=str(uuid.uuid4())), 1, "parent_id", "no message"),
    (lambda m: m[1].update(colour="red"), 1, "colour", "unknown key"),
    (lambda m: m[1].update(is_valid="yes"), 1, "is_valid", "true or false"),
    (lambda m: m[1].update(id=m[0]["id"], parent_id=None), 1, "id", "same id as index 0"),
    (lambda m: m[0].update(seq_num=153), 0, "seq_num", "has seq_num 152 in repo demo"),  # obs_id of 152
    (lambda m: m.append("hello"), 2, "", "JSON object"),
]


@pytest.mark.parametrize(("change", "index", "key", "text"), BAD_FILES)
def test_a_bad_export_names_index_and_key_and_stores_nothing(owner, butler_repo, change, index, key, text):
    with pytest.raises(InputError) as caught:
        flag_import(user=owner, repo_label="demo", data=broken(change))
    problems = caught.value.problems
    assert problems, caught.value.message
    first = problems[0]
    assert first["where"] == f"index {index}"
    assert first["key"] == key
    assert text in first["message"]
    assert "nothing was stored" in caught.value.message
    assert ExposureFlag.objects.count() == 0


def test_a_reimport_with_different_content_is_refused(owner, butler_repo):
    flag_import(user=owner, repo_label="demo", data=SAMPLE.read_bytes())
    changed = sample()
    changed[1]["message_text"] = "Something else."
    with pytest.raises(InputError) as caught:
        flag_import(user=owner, repo_label="demo", data=changed)
    assert caught.value.problems[0]["key"] == "message_text" and caught.value.problems[0]["index"] == 1
    assert ExposureFlag.objects.get(pk=changed[1]["id"]).message_text.startswith("Dome light left on")


def test_a_file_that_is_not_json_names_line_and_column(owner, butler_repo):
    with pytest.raises(InputError) as caught:
        flag_import(user=owner, repo_label="demo", data=b'[\n  {"id": 1,\n  oops}\n]')
    assert caught.value.problems[0]["where"] == "line 3, column 3"
    with pytest.raises(InputError) as caught:
        flag_import(user=owner, repo_label="demo", data=b'{"id": 1}')
    assert "list" in caught.value.problems[0]["message"]
    assert ExposureFlag.objects.count() == 0


def test_science_users_cannot_import(science_user, butler_repo):
    with pytest.raises(PermissionDenied):
        flag_import(user=science_user, repo_label="demo", data=SAMPLE.read_bytes())
    assert ExposureFlag.objects.count() == 0


def test_a_large_import_refreshes_the_planner_statistics(owner, butler_repo, monkeypatch):
    """Stale statistics made the exclusion subquery a nested loop (22 s instead of 50 ms for 20,000 flags)."""
    from django.db import connection

    from tagging.services import flags as flag_services

    def estimated_rows() -> float:
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [ExposureFlag._meta.db_table])
            return cursor.fetchone()[0]

    if connection.vendor != "postgresql":
        pytest.skip("planner statistics are PostgreSQL's")
    monkeypatch.setattr(flag_services, "ANALYZE_AFTER", 2)
    flag_import(user=owner, repo_label="demo", data=SAMPLE.read_bytes())
    assert estimated_rows() == 2
