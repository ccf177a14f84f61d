"""The exposure page: valid flags (with the forms for staff), tag-table rows, DataID sets and open bad data,
each only as the user may see them, at a fixed number of queries.

Everything is made through the real services (tag rows are checked against the registry).
"""

from __future__ import annotations

import pytest
from django.test import Client

from tagging.models import ButlerRepo, TagTable
from tagging.services import dataidset_share
from tagging.services.baddata import bad_data_add, bad_data_set_status
from tagging.services.flags import flag_add, flag_edit, flag_invalidate
from tagging.services.tagtables import tag_column_retire, tag_rows_upsert, tagtable_create

from .helpers import exposure_id, ids

pytestmark = pytest.mark.django_db

EXPOSURE = exposure_id(151)
PAGE = f"/data/repos/demo/exposures/{EXPOSURE}/"


def page(user, path: str = PAGE):
    client = Client()
    client.force_login(user)
    response = client.get(path)
    assert response.status_code == 200
    return response


COLUMNS = [
    {"name": "seeing", "type": "float", "unit": "arcsec"},
    {"name": "dome_open", "type": "bool"},
    {"name": "old", "type": "string"},
]
NAMES = {"c1": "seeing", "c2": "dome_open", "c3": "old"}


def tag_table(owner, name: str, visibility: str, key_dimensions=("instrument", "exposure"), **extra) -> TagTable:
    """A table with seeing, dome_open and a retired column 'old' (keys c1, c2, c3)."""
    repo = ButlerRepo.objects.get(pk=extra.pop("repo_id"))
    table = tagtable_create(
        user=owner,
        repo_label=repo.label,
        name=name,
        key_dimensions=list(key_dimensions),
        columns=COLUMNS,
        visibility=visibility,
        **extra,
    )
    tag_column_retire(user=owner, table_id=table.pk, column_key="c3", reason="no longer measured")
    return table


def row(table, owner, data_id: int | dict, **values) -> None:
    """A row by exposure id (or a data ID), values by column key; a value of the retired column is written
    while it is briefly brought back, as it would have been before it was retired."""
    if not isinstance(data_id, dict):
        data_id = {"instrument": "DemoCam", "exposure": data_id}
    retired = "c3" in values
    if retired:
        tag_column_retire(user=owner, table_id=table.pk, column_key="c3", retire=False, reason="old values")
    tag_rows_upsert(user=owner, table_id=table.pk, rows=[{**data_id, **{NAMES[k]: v for k, v in values.items()}}])
    if retired:
        tag_column_retire(user=owner, table_id=table.pk, column_key="c3", reason="no longer measured")


@pytest.fixture
def world(owner, other_staff, butler_repo, make_set):
    """Flags, tag rows, sets and bad data on exposure 151 (and some elsewhere), of every visibility."""
    first = flag_add(
        user=owner, repo_label="demo", exposure=EXPOSURE, message_text="Dome light on", exposure_flag="questionable"
    )
    flag_edit(user=owner, flag_id=first.pk, message_text="Dome light on: unusable", exposure_flag="junk")
    gone = flag_add(user=owner, repo_label="demo", exposure=EXPOSURE, message_text="Deleted note")
    flag_invalidate(user=owner, flag_id=gone.pk)
    flag_add(user=owner, repo_label="demo", exposure=exposure_id(152), message_text="Another exposure")

    public = tag_table(owner, "seeing", "public", repo_id=butler_repo.pk, polarity="select", purpose="good seeing")
    row(public, owner, EXPOSURE, c1=0.71, c2=True, c3="kept")
    row(public, owner, exposure_id(152), c1=1.4, c2=False)
    private = tag_table(other_staff, "secret-table", "private", repo_id=butler_repo.pk, polarity="reject")
    row(private, other_staff, EXPOSURE, c1=2.0)

    make_set("mine-public", ids([151, 152], [0, 1, 2]), visibility="public")
    make_set("bobs-private", ids([151], [0]), user=other_staff)
    shared = make_set("bobs-shared", ids([151], [3, 4]), user=other_staff)
    dataidset_share(user=other_staff, set_id=shared.dataid_set_id, group="science", permission="view")
    make_set("elsewhere", ids([150], [0]), visibility="public")

    bad_data_add(
        user=owner,
        repo_label="demo",
        summary="Bad amp",
        data_id={"instrument": "DemoCam", "exposure": EXPOSURE, "detector": 2},
    )
    fixed = bad_data_add(
        user=owner, repo_label="demo", summary="Old problem", data_id={"instrument": "DemoCam", "exposure": EXPOSURE}
    )
    bad_data_set_status(user=owner, record_id=fixed.pk, status="fixed")


def test_everyone_sees_the_valid_flags_only(science_user, world):
    body = page(science_user).content.decode()
    assert "Dome light on: unusable" in body
    assert "Deleted note" not in body and "Another exposure" not in body
    assert ">Dome light on<" not in body  # the superseded version is in the history, not on the page
    assert [f.message_text for f in page(science_user).context["flags"]] == ["Dome light on: unusable"]


def test_staff_get_the_flag_forms_and_science_users_do_not(owner, science_user, world):
    staff_body = page(owner).content.decode()
    assert 'id="flag-submit"' in staff_body and "Save as a new version" in staff_body and "data-confirm" in staff_body
    science_body = page(science_user).content.decode()
    assert 'id="flag-submit"' not in science_body and "Save as a new version" not in science_body


def test_tag_rows_show_only_tables_the_user_may_see_with_values_by_column_name(owner, science_user, other_staff, world):
    rows = page(science_user).context["tag_rows"]
    assert [(r.table.name, r.key) for r in rows] == [("seeing", f"instrument=DemoCam,exposure={EXPOSURE}")]
    assert rows[0].values == [("seeing", 0.71, "arcsec"), ("dome_open", True, "")]  # retired column left out
    assert "secret-table" not in page(science_user).content.decode()
    assert sorted(r.table.name for r in page(other_staff).context["tag_rows"]) == ["secret-table", "seeing"]
    assert "good seeing" in page(owner).content.decode()


def test_a_row_keyed_by_the_visit_shows_on_its_exposure(owner, science_user, butler_repo, world):
    exposure = butler_repo.exposures.get(exposure_id=EXPOSURE)
    assert exposure.visit_id  # the demo repo defines one-to-one visits for science exposures
    table = tag_table(
        owner, "by-visit", "public", key_dimensions=("instrument", "visit", "detector"), repo_id=butler_repo.pk
    )
    row(table, owner, {"instrument": "DemoCam", "visit": exposure.visit_id, "detector": 3}, c1=0.9)
    assert "by-visit" in [r.table.name for r in page(science_user).context["tag_rows"]]


def test_sets_show_only_those_the_user_may_see_with_the_matching_count(science_user, other_staff, outsider, world):
    seen = {v.dataid_set.name: v.matching for v in page(science_user).context["dataid_sets"]}
    assert seen == {"mine-public": 3, "bobs-shared": 2}
    assert {v.dataid_set.name for v in page(other_staff).context["dataid_sets"]} == {
        "mine-public",
        "bobs-private",
        "bobs-shared",
    }
    assert {v.dataid_set.name for v in page(outsider).context["dataid_sets"]} == {"mine-public"}


def test_only_the_latest_version_of_a_set_counts(science_user, make_set, world):
    make_set("mine-public", ids([152], [0]), visibility="public")  # version 2 no longer holds exposure 151
    assert {v.dataid_set.name for v in page(science_user).context["dataid_sets"]} == {"bobs-shared"}


def test_open_bad_data_shows_and_fixed_does_not(science_user, world):
    body = page(science_user).content.decode()
    assert "Bad amp" in body and "Old problem" not in body


def test_the_exposure_page_costs_a_fixed_number_of_queries(
    owner, science_user, butler_repo, make_set, world, django_assert_num_queries
):
    client = Client()
    client.force_login(science_user)
    client.get(PAGE)  # warm the session and content types
    with django_assert_num_queries(QUERIES) as first:
        client.get(PAGE)
    # More of everything: the count does not move.
    for n in range(3):
        flag_add(user=owner, repo_label="demo", exposure=EXPOSURE, message_text=f"note {n}")
        make_set(f"more-{n}", ids([151], [n]), visibility="public")
        bad_data_add(
            user=owner,
            repo_label="demo",
            summary=f"bad {n}",
            data_id={"instrument": "DemoCam", "exposure": EXPOSURE, "detector": n + 5},
        )
    table = tag_table(owner, "more", "public", repo_id=butler_repo.pk)
    row(table, owner, EXPOSURE, c1=1.0)
    with django_assert_num_queries(len(first.captured_queries)):
        response = client.get(PAGE)
    assert len(response.context["flags"]) == 4 and len(response.context["tag_rows"]) == 2


# The page, its flags, bad data, tag rows, sets (2 zone-map probes + 1) and campaigns sections (groups that
# covered it, metric values, groups of campaigns not worked out yet).
QUERIES = 16
