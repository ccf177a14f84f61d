"""Tag-table services against a real Butler repo: schema checks on every type, schema changes, row history,
optimistic concurrency and alternate keys."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from core.errors import ConflictError, InputError
from tagging.models import TagRowChange, TagTableEvent
from tagging.services import tagtables as svc

from .tagtable_helpers import assert_no_rows, exposure_id, key_of, make_table, values_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def table(butler_repo, owner):
    return make_table(owner)


def upsert(table, user, rows, **kw):
    return svc.tag_rows_upsert(user=user, table_id=table.pk, rows=rows, **kw)


def test_create_records_columns_with_stable_keys_and_an_event(table, owner):
    assert table.key_dimensions == ["instrument", "exposure"]
    assert [(c.key, c.name, c.type) for c in table.columns.order_by("position")] == [
        ("c1", "seeing", "float"),
        ("c2", "n_sat", "int"),
        ("c3", "comment", "string"),
        ("c4", "dome_open", "bool"),
        ("c5", "quality", "enum"),
        ("c6", "checked_at", "datetime"),
    ]
    event = TagTableEvent.objects.get(table=table)
    assert event.action == "created" and event.user == owner


def test_science_user_cannot_create_a_table(butler_repo, science_user):
    with pytest.raises(PermissionDenied):
        make_table(science_user)


@pytest.mark.parametrize(
    "columns, field, text",
    [
        ([{"name": "exposure", "type": "int"}], "columns[0].name", "names a data ID key"),
        ([{"name": "1bad", "type": "int"}], "columns[0].name", "not starting with a digit"),
        ([{"name": "x", "type": "complex"}], "columns[0].type", "not a column type"),
        ([{"name": "q", "type": "enum"}], "columns[0].enum_values", "needs its allowed values"),
        ([{"name": "a", "type": "int"}, {"name": "a", "type": "float"}], "columns[1].name", "declared twice"),
    ],
)
def test_bad_column_declarations_are_refused_with_the_column_named(butler_repo, owner, columns, field, text):
    with pytest.raises(ValidationError) as err:
        make_table(owner, columns=columns)
    assert text in " ".join(err.value.message_dict[field])


def test_unknown_key_dimension_is_refused(butler_repo, owner):
    with pytest.raises(ValidationError) as err:
        make_table(owner, key_dimensions=["exposure", "nonsense"])
    assert "nonsense" in " ".join(err.value.message_dict["key_dimensions"])


def test_values_of_every_type_are_checked_and_normalised(table, owner):
    result = upsert(
        table,
        owner,
        [
            {
                "exposure": exposure_id(150),
                "seeing": "1.25",
                "n_sat": "3",
                "comment": " smeared ",
                "dome_open": "no",
                "quality": "wonky",
                "checked_at": "2025-11-21T03:04:05Z",
            }
        ],
        reason="night check",
    )
    assert result.created == 1
    assert values_of(table, key_of(150)) == {
        "seeing": 1.25,
        "n_sat": 3,
        "comment": "smeared",
        "dome_open": False,
        "quality": "wonky",
        "checked_at": "2025-11-21T03:04:05+00:00",
    }
    table.refresh_from_db()
    assert table.row_count == 1


@pytest.mark.parametrize(
    "column, value, text",
    [
        ("seeing", "fast", "'fast' is not a number"),
        ("seeing", "nan", "not a finite number"),
        ("n_sat", "2.5", "'2.5' is not an integer"),
        ("n_sat", True, "True is not an integer"),
        ("dome_open", "maybe", "'maybe' is not a boolean"),
        ("quality", "meh", "'meh' is not one of good, wonky, junk"),
        ("checked_at", "21/11/2025", "not an ISO 8601 date"),
        ("comment", {"a": 1}, "is not a string"),
    ],
)
def test_bad_values_of_each_type_are_refused_naming_index_and_column(table, owner, column, value, text):
    with pytest.raises(InputError) as err:
        upsert(table, owner, [{"exposure": exposure_id(150), "seeing": 1.0, column: value}])
    problem = err.value.problems[0]
    assert problem["where"] == "index 0" and problem["key"] == column
    assert text in problem["message"]
    assert_no_rows(table)


def test_required_column_must_have_a_value(table, owner):
    with pytest.raises(InputError) as err:
        upsert(table, owner, [{"exposure": exposure_id(150), "n_sat": 1}])
    assert err.value.problems == [
        {"where": "index 0", "key": "seeing", "message": "required column 'seeing' has no value"}
    ]
    assert_no_rows(table)


def test_unknown_column_and_unknown_exposure_are_reported_together(table, owner):
    with pytest.raises(InputError) as err:
        upsert(
            table,
            owner,
            [
                {"exposure": exposure_id(150), "seeing": 1.0, "fwhm": 2},
                {"exposure": exposure_id(999), "seeing": 1.0},
            ],
        )
    assert err.value.total == 2
    assert {(p["where"], p["key"]) for p in err.value.problems} == {("index 0", "fwhm"), ("index 1", "exposure")}
    assert_no_rows(table)


def test_alternate_keys_name_the_same_rows(table, owner):
    upsert(
        table,
        owner,
        [
            {"obs_id": "DC_O_20251121_000150", "seeing": 1.0},
            {"day_obs": 20251121, "seq_num": 151, "seeing": 1.1},
        ],
    )
    assert set(table.rows.values_list("key", flat=True)) == {key_of(150), key_of(151)}
    row = table.rows.get(key=key_of(150))
    assert (row.instrument, row.exposure) == ("DemoCam", exposure_id(150))


def test_detector_full_name_is_an_alternate_key(butler_repo, owner):
    table = make_table(
        owner, name="per-ccd", key_dimensions=["exposure", "detector"], columns=[{"name": "bad", "type": "bool"}]
    )
    upsert(table, owner, [{"exposure": exposure_id(150), "detector": "R22_S11", "bad": True}])
    assert list(table.rows.values_list("key", flat=True)) == [
        f"instrument=DemoCam,detector=4,exposure={exposure_id(150)}"
    ]


def test_every_row_change_is_kept_with_who_when_old_new_and_why(table, owner, other_staff):
    upsert(table, owner, [{"exposure": exposure_id(150), "seeing": 1.0, "quality": "good"}], reason="first look")
    from tagging.services.tagtables import tagtable_share

    tagtable_share(user=owner, table_id=table.pk, username="bob", permission="change")
    upsert(table, other_staff, [{"exposure": exposure_id(150), "quality": "wonky"}], reason="PSF is elongated")
    upsert(table, other_staff, [{"exposure": exposure_id(150), "quality": "wonky"}], reason="no change")
    svc.tag_rows_delete(user=owner, table_id=table.pk, keys=[key_of(150)], reason="exposure re-taken")

    changes = list(TagRowChange.objects.filter(table=table, row_key=key_of(150)).order_by("timestamp", "pk"))
    assert [(c.action, c.user.username, c.reason) for c in changes] == [
        ("create", "alice", "first look"),
        ("update", "bob", "PSF is elongated"),
        ("delete", "alice", "exposure re-taken"),
    ]
    assert changes[1].old == {"c5": "good"} and changes[1].new == {"c5": "wonky"}
    assert changes[2].old == {"c1": 1.0, "c5": "wonky"} and changes[2].new is None
    table.refresh_from_db()
    assert table.row_count == 0


def test_delete_needs_a_reason_and_existing_keys(table, owner):
    upsert(table, owner, [{"exposure": exposure_id(150), "seeing": 1.0}])
    with pytest.raises(ValidationError):
        svc.tag_rows_delete(user=owner, table_id=table.pk, keys=[key_of(150)], reason=" ")
    with pytest.raises(InputError) as err:
        svc.tag_rows_delete(user=owner, table_id=table.pk, keys=[key_of(150), key_of(151)], reason="gone")
    assert err.value.problems[0]["key"] == key_of(151)
    assert table.rows.count() == 1


def test_schema_changes_keep_values_and_are_recorded(table, owner):
    upsert(table, owner, [{"exposure": exposure_id(150), "seeing": 1.2, "comment": "trail"}])
    svc.tag_column_update(
        user=owner,
        table_id=table.pk,
        column_key="c1",
        changes={"name": "psf_fwhm", "unit": "pixel", "description": "measured by hand"},
    )
    assert values_of(table, key_of(150))["psf_fwhm"] == 1.2
    upsert(table, owner, [{"exposure": exposure_id(151), "psf_fwhm": 0.9}])

    svc.tag_column_retire(user=owner, table_id=table.pk, column_key="comment", reason="not used")
    with pytest.raises(InputError) as err:
        upsert(table, owner, [{"exposure": exposure_id(151), "comment": "x"}])
    assert err.value.problems[0]["message"] == "column 'comment' is retired"
    assert values_of(table, key_of(150))["comment"] == "trail"  # kept
    svc.tag_column_retire(user=owner, table_id=table.pk, column_key="comment", retire=False)

    column = svc.tag_column_add(user=owner, table_id=table.pk, spec={"name": "airmass", "type": "float"})
    assert column.key == "c7"
    upsert(table, owner, [{"exposure": exposure_id(150), "airmass": 1.3}])
    assert values_of(table, key_of(150)) == {"psf_fwhm": 1.2, "comment": "trail", "airmass": 1.3}

    actions = list(
        TagTableEvent.objects.filter(table=table).order_by("timestamp", "pk").values_list("action", flat=True)
    )
    assert actions == [
        "created",
        "column_renamed",
        "column_unit_changed",
        "column_description_changed",
        "column_retired",
        "column_unretired",
        "column_added",
    ]
    renamed = TagTableEvent.objects.get(table=table, action="column_renamed")
    assert renamed.detail == {"old": "seeing", "new": "psf_fwhm"}


def test_a_required_column_cannot_be_added_to_a_table_with_rows(table, owner):
    upsert(table, owner, [{"exposure": exposure_id(150), "seeing": 1.2}])
    with pytest.raises(ValidationError) as err:
        svc.tag_column_add(user=owner, table_id=table.pk, spec={"name": "x", "type": "int", "required": True})
    assert "1 rows would have no value" in err.value.message_dict["required"][0]


def test_enum_values_can_be_added_but_not_removed(table, owner):
    svc.tag_column_update(
        user=owner, table_id=table.pk, column_key="quality", changes={"enum_values": ["good", "wonky", "junk", "meh"]}
    )
    with pytest.raises(ValidationError):
        svc.tag_column_update(user=owner, table_id=table.pk, column_key="quality", changes={"enum_values": ["good"]})


def test_stale_version_is_a_conflict_naming_who_changed_what(table, owner, other_staff):
    svc.tagtable_share(user=owner, table_id=table.pk, username="bob", permission="change")
    loaded = table.version
    svc.tagtable_update(user=other_staff, table_id=table.pk, version=loaded, changes={"purpose": "templates"})
    with pytest.raises(ConflictError) as err:
        svc.tagtable_update(user=owner, table_id=table.pk, version=loaded, changes={"description": "mine"})
    assert "bob" in str(err.value) and "updated" in str(err.value)
    assert err.value.extra["changed_by"] == "bob"


def test_visit_name_is_an_alternate_key(butler_repo, owner):
    from tagging.models import Exposure

    visit = Exposure.objects.filter(repo=butler_repo, visit_id__isnull=False).order_by("exposure_id").first()
    assert visit is not None
    table = make_table(owner, name="per-visit", key_dimensions=["visit"], columns=[{"name": "note", "type": "string"}])
    upsert(table, owner, [{"visit": visit.obs_id, "note": "named by its visit name"}])
    row = table.rows.get()
    assert row.visit == visit.visit_id and row.key == f"instrument=DemoCam,visit={visit.visit_id}"


def test_adding_a_row_whose_data_id_has_one_is_a_conflict_with_the_stored_values(table, owner):
    upsert(table, owner, [{"exposure": exposure_id(150), "seeing": 1.2, "quality": "wonky"}], reason="night log")
    before = list(TagRowChange.objects.values_list("pk", flat=True))
    with pytest.raises(ConflictError) as caught:
        # by obs_id: the same data ID as the stored row
        upsert(
            table,
            owner,
            [{"obs_id": "DC_O_20251121_000150", "seeing": 0.8}, {"exposure": exposure_id(151), "seeing": 0.9}],
            on_existing="refuse",
        )
    assert str(caught.value).startswith(f"{key_of(150)} already has a row (seeing=1.2, quality=wonky)")
    assert caught.value.extra["code"] == "row_exists" and caught.value.extra["existing_total"] == 1
    (existing,) = caught.value.extra["existing"]
    assert existing["key"] == key_of(150) and existing["values"]["seeing"] == 1.2
    assert existing["updated_by"] == "alice"
    # Nothing stored, not even the new row beside it.
    assert values_of(table, key_of(150))["seeing"] == 1.2 and not table.rows.filter(key=key_of(151)).exists()
    assert list(TagRowChange.objects.values_list("pk", flat=True)) == before
    # Chosen: update.
    result = upsert(table, owner, [{"obs_id": "DC_O_20251121_000150", "seeing": 0.8}], on_existing="update")
    assert (result.created, result.updated) == (0, 1) and values_of(table, key_of(150))["seeing"] == 0.8
    # A new data ID is simply added.
    assert upsert(table, owner, [{"exposure": exposure_id(151), "seeing": 0.9}], on_existing="refuse").created == 1
    with pytest.raises(InputError, match="on_existing"):
        upsert(table, owner, [{"exposure": exposure_id(152), "seeing": 0.9}], on_existing="merge")
