"""Exposure flags, the exposure-log way: add against the mirror, append-only edit, delete = invalidate,
history as the parent chain. All through the real services and the real test Butler repo."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from core.errors import ConflictError
from tagging.models import ExposureFlag
from tagging.selectors_flags import flag_history, junk_exposures
from tagging.services.flags import flag_add, flag_edit, flag_invalidate

from .helpers import NIGHT, NIGHT2, exposure_id

pytestmark = pytest.mark.django_db


def add(user, **extra) -> ExposureFlag:
    fields = {"message_text": "Dome light on", "exposure_flag": "junk", "obs_id": f"DC_O_{NIGHT}_000151"}
    fields.update(extra)
    return flag_add(user=user, repo_label="demo", **fields)


def test_a_flag_by_obs_id_gets_the_exposure_id_day_obs_and_seq_num_from_the_mirror(owner, butler_repo):
    flag = add(owner, tags="dome scattered-light", urls=["https://jira.example.org/browse/OBS-1"], level=30)
    assert (flag.instrument, flag.exposure, flag.day_obs, flag.seq_num) == ("DemoCam", exposure_id(151), NIGHT, 151)
    assert flag.tags == ["dome", "scattered-light"]
    assert flag.user_id == "alice" and flag.author == owner and flag.is_valid and flag.parent is None


@pytest.mark.parametrize(
    "name",
    [
        {"exposure": exposure_id(152, NIGHT2)},
        {"instrument": "DemoCam", "day_obs": NIGHT2, "seq_num": 152},
        {"obs_id": f"DC_O_{NIGHT2}_000152", "day_obs": NIGHT2},
    ],
)
def test_a_flag_may_name_its_exposure_by_any_key(owner, butler_repo, name):
    flag = add(owner, **{"obs_id": None, **name})
    assert (flag.exposure, flag.obs_id) == (exposure_id(152, NIGHT2), f"DC_O_{NIGHT2}_000152")


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"obs_id": "DC_O_20251121_000999"}, "exposure"),
        ({"obs_id": None}, "exposure"),
        ({"obs_id": f"DC_O_{NIGHT}_000151", "seq_num": 152}, "seq_num"),
        ({"exposure_flag": "awful"}, "exposure_flag"),
        ({"message_text": "   "}, "message_text"),
        ({"level": "loud"}, "level"),
        ({"urls": ["ftp://x"]}, "urls"),
        ({"tags": ["two words"]}, "tags"),
    ],
)
def test_a_bad_flag_names_the_field_and_stores_nothing(owner, butler_repo, fields, key):
    with pytest.raises(ValidationError) as caught:
        add(owner, **fields)
    assert key in caught.value.message_dict
    assert ExposureFlag.objects.count() == 0


def test_science_users_and_outsiders_cannot_write_flags(science_user, outsider, owner, butler_repo):
    for user in (science_user, outsider):
        with pytest.raises(PermissionDenied):
            add(user)
    flag = add(owner)
    for user in (science_user, outsider):
        with pytest.raises(PermissionDenied):
            flag_edit(user=user, flag_id=flag.pk, message_text="x")
        with pytest.raises(PermissionDenied):
            flag_invalidate(user=user, flag_id=flag.pk)
    assert ExposureFlag.objects.get().is_valid


def test_editing_makes_a_child_and_invalidates_the_parent(owner, other_staff, butler_repo):
    first = add(owner, exposure_flag="questionable", tags=["dome"])
    second = flag_edit(user=other_staff, flag_id=first.pk, exposure_flag="junk", message_text="Unusable.")
    first.refresh_from_db()
    assert not first.is_valid and first.date_invalidated is not None
    assert first.message_text == "Dome light on" and first.exposure_flag == "questionable"  # the old one is kept as is
    assert second.parent_id == first.pk and second.is_valid and second.date_invalidated is None
    assert (second.exposure_flag, second.message_text, second.tags) == ("junk", "Unusable.", ["dome"])
    assert second.user_id == "bob" and second.exposure == first.exposure
    third = flag_edit(user=owner, flag_id=second.pk, level=40)
    assert [f.pk for f in flag_history(flag=second)] == [first.pk, second.pk, third.pk]
    assert [f.pk for f in flag_history(flag=first)] == [first.pk, second.pk, third.pk]
    assert ExposureFlag.objects.filter(is_valid=True).get() == third


def test_a_superseded_flag_cannot_be_edited_again(owner, butler_repo):
    first = add(owner)
    flag_edit(user=owner, flag_id=first.pk, message_text="second")
    with pytest.raises(ConflictError):
        flag_edit(user=owner, flag_id=first.pk, message_text="third")
    assert ExposureFlag.objects.count() == 2


def test_deleting_only_invalidates_and_twice_is_harmless(owner, butler_repo):
    flag = add(owner)
    flag_invalidate(user=owner, flag_id=flag.pk)
    flag.refresh_from_db()
    when = flag.date_invalidated
    assert not flag.is_valid and when is not None
    flag_invalidate(user=owner, flag_id=flag.pk)
    flag.refresh_from_db()
    assert flag.date_invalidated == when
    assert ExposureFlag.objects.count() == 1


def test_junk_exposures_are_those_with_a_valid_junk_flag(owner, butler_repo):
    add(owner, obs_id=f"DC_O_{NIGHT}_000151")
    questionable = add(owner, obs_id=f"DC_O_{NIGHT}_000152", exposure_flag="questionable")
    deleted = add(owner, obs_id=f"DC_O_{NIGHT}_000153")
    flag_invalidate(user=owner, flag_id=deleted.pk)
    assert sorted(junk_exposures(butler_repo).values_list("exposure_id", flat=True)) == [exposure_id(151)]
    both = junk_exposures(butler_repo, flags=("junk", "questionable"))
    assert sorted(e["exposure_id"] for e in both) == [exposure_id(151), exposure_id(152)]
    flag_edit(user=owner, flag_id=questionable.pk, exposure_flag="junk")
    assert sorted(junk_exposures(butler_repo).values_list("exposure_id", flat=True)) == [
        exposure_id(151),
        exposure_id(152),
    ]
