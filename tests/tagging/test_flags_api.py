"""The flags API: the exposure log's filters and paging, the writes, and who may do what."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tagging.models import ExposureFlag
from tagging.services.flags import flag_add, flag_edit, flag_invalidate

from .helpers import NIGHT, NIGHT2, exposure_id

pytestmark = pytest.mark.django_db

API = "/api/v1/flags/"
SAMPLE = Path(__file__).parent / "data" / "exposurelog-messages.json"


@pytest.fixture
def flags(owner, other_staff, butler_repo) -> dict[str, ExposureFlag]:
    """Five messages on four exposures, one of them edited and one deleted."""

    def add(user, seq, night=NIGHT, **fields):
        return flag_add(user=user, repo_label="demo", exposure=exposure_id(seq, night), **fields)

    made = {
        "dome": add(owner, 150, message_text="Dome light on", exposure_flag="junk", tags=["dome"], level=40),
        "clouds": add(other_staff, 151, message_text="Thin clouds", exposure_flag="questionable", tags=["sky"]),
        "note": add(owner, 152, NIGHT2, message_text="Satellite trail", tags=["trail", "sky"]),
        "gone": add(owner, 153, message_text="Wrong filter?", exposure_flag="questionable"),
    }
    made["clouds2"] = flag_edit(
        user=owner, flag_id=made["clouds"].pk, message_text="Thick clouds", exposure_flag="junk"
    )
    flag_invalidate(user=owner, flag_id=made["gone"].pk)
    return made


def ids(client, **params) -> list[str]:
    response = client.get(API, params)
    assert response.status_code == 200, response.content
    return [m["id"] for m in response.json()["results"]]


def names(made, *keys) -> set[str]:
    return {str(made[k].pk) for k in keys}


FILTERS = [
    ({}, ("dome", "clouds2", "note")),  # valid only, by default
    ({"is_valid": "false"}, ("clouds", "gone")),
    ({"is_valid": "any"}, ("dome", "clouds", "clouds2", "note", "gone")),
    ({"exposure_flags": "junk"}, ("dome", "clouds2")),
    ({"exposure_flags": ["junk", "none"]}, ("dome", "clouds2", "note")),
    ({"tags": "sky"}, ("clouds2", "note")),
    ({"tags": "sky", "is_valid": "any"}, ("clouds", "clouds2", "note")),  # the edit keeps the tags
    ({"tags": ["dome", "trail"]}, ("dome", "note")),
    ({"user_ids": "bob", "is_valid": "any"}, ("clouds",)),
    ({"message_text": "clouds"}, ("clouds2",)),
    ({"message_text": "CLOUDS"}, ()),  # case-sensitive, as the log's SQL LIKE
    ({"obs_id": "000150"}, ("dome",)),
    ({"instruments": "DemoCam"}, ("dome", "clouds2", "note")),
    ({"instruments": "LATISS"}, ()),
    ({"min_day_obs": NIGHT2}, ("note",)),
    ({"max_day_obs": NIGHT2}, ("dome", "clouds2")),  # exclusive, as in the exposure log
    ({"min_day_obs": NIGHT, "max_day_obs": NIGHT + 1}, ("dome", "clouds2")),
    ({"has_parent_id": "true"}, ("clouds2",)),
    ({"is_human": "false"}, ()),
    ({"exposure": exposure_id(151), "is_valid": "any"}, ("clouds", "clouds2")),
    ({"repo": "demo"}, ("dome", "clouds2", "note")),
]


@pytest.mark.parametrize(("params", "expected"), FILTERS)
def test_the_flag_api_filters_like_the_exposure_log(api, science_user, flags, params, expected):
    assert set(ids(api(science_user), **params)) == names(flags, *expected)


def test_order_by_and_limit_offset_page_through_every_message_once(api, science_user, flags):
    client = api(science_user)
    by_seq = ids(client, order_by="seq_num", is_valid="any")
    assert [ExposureFlag.objects.get(pk=i).seq_num for i in by_seq] == sorted(
        ExposureFlag.objects.values_list("seq_num", flat=True)
    )
    newest_first = ids(client, order_by="-date_added", is_valid="any")
    assert newest_first[0] == str(ExposureFlag.objects.order_by("-date_added").first().pk)
    seen = []
    for offset in range(0, 6, 2):
        body = client.get(API, {"is_valid": "any", "order_by": "-level", "limit": 2, "offset": offset}).json()
        assert body["count"] == 5
        seen += [m["id"] for m in body["results"]]
    assert len(seen) == 5 and set(seen) == names(flags, "dome", "clouds", "clouds2", "note", "gone")


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"order_by": "colour"}, "order_by"),
        ({"exposure_flags": "awful"}, "exposure_flags"),
        ({"min_day_obs": "x"}, "min_day_obs"),
    ],
)
def test_a_bad_filter_is_a_400_naming_the_parameter(api, science_user, flags, params, key):
    response = api(science_user).get(API, params)
    assert response.status_code == 400
    assert key in response.json()


def test_anonymous_callers_get_nothing(api, flags):
    assert api(None).get(API).status_code in (401, 403)
    assert api(None).get(f"{API}{flags['dome'].pk}/").status_code in (401, 403)
    assert api(None).post(API, {"repo": "demo", "exposure": exposure_id(150), "message_text": "x"}).status_code in (
        401,
        403,
    )


def test_science_users_read_flags_and_history_but_every_write_is_403(api, science_user, outsider, flags):
    for user in (science_user, outsider):
        client = api(user)
        assert client.get(f"{API}{flags['dome'].pk}/").json()["message_text"] == "Dome light on"
        history = client.get(f"{API}{flags['clouds2'].pk}/history/").json()
        assert [m["id"] for m in history] == [str(flags["clouds"].pk), str(flags["clouds2"].pk)]
        writes = [
            client.post(API, {"repo": "demo", "exposure": exposure_id(150), "message_text": "x"}),
            client.patch(f"{API}{flags['dome'].pk}/", {"message_text": "changed"}),
            client.delete(f"{API}{flags['dome'].pk}/"),
            client.post(f"{API}{flags['dome'].pk}/invalidate/"),
            client.post(f"{API}import/", {"repo": "demo", "messages": json.loads(SAMPLE.read_text())}),
        ]
        assert [r.status_code for r in writes] == [403] * 5
    assert ExposureFlag.objects.count() == 5
    assert ExposureFlag.objects.get(pk=flags["dome"].pk).is_valid


def test_staff_add_edit_and_delete_through_the_api(api, other_staff, flags):
    client = api(other_staff)
    made = client.post(
        API,
        {
            "repo": "demo",
            "obs_id": f"DC_O_{NIGHT2}_000150",
            "message_text": "Vignetting",
            "exposure_flag": "questionable",
            "tags": ["optics"],
        },
    )
    assert made.status_code == 201, made.content
    body = made.json()
    assert (body["exposure"], body["day_obs"], body["seq_num"], body["user_id"]) == (
        exposure_id(150, NIGHT2),
        NIGHT2,
        150,
        "bob",
    )
    edited = client.patch(f"{API}{body['id']}/", {"exposure_flag": "junk"})
    assert edited.status_code == 201 and edited.json()["parent_id"] == body["id"]
    assert client.get(f"{API}{body['id']}/").json()["is_valid"] is False
    assert client.patch(f"{API}{body['id']}/", {"exposure_flag": "none"}).status_code == 409  # superseded
    deleted = client.delete(f"{API}{edited.json()['id']}/")
    assert deleted.status_code == 200 and deleted.json()["is_valid"] is False
    assert ExposureFlag.objects.filter(obs_id=f"DC_O_{NIGHT2}_000150").count() == 2  # nothing is ever removed


def test_adding_a_flag_to_an_unknown_exposure_is_a_400_naming_it(api, owner, butler_repo):
    response = api(owner).post(API, {"repo": "demo", "obs_id": "DC_O_20251121_000999", "message_text": "x"})
    assert response.status_code == 400
    assert "DC_O_20251121_000999" in response.json()["exposure"][0]
    assert not ExposureFlag.objects.exists()


def test_the_import_endpoint_takes_a_file_and_is_idempotent(api, owner, butler_repo):
    client = api(owner)
    with SAMPLE.open("rb") as fh:
        first = client.post(f"{API}import/", {"repo": "demo", "file": fh}, format="multipart")
    assert first.status_code == 200, first.content
    assert first.json()["created"] == 2
    again = client.post(f"{API}import/", {"repo": "demo", "messages": json.loads(SAMPLE.read_text())})
    assert again.json() == {"read": 2, "created": 0, "updated": 0, "unchanged": 2, "not_in_repo": 0}
    bad = json.loads(SAMPLE.read_text())
    del bad[0]["instrument"]
    response = client.post(f"{API}import/", {"repo": "demo", "messages": bad})
    assert response.status_code == 400
    assert response.json()["errors"][0] == {"where": "index 0", "index": 0, "key": "instrument", "message": "missing"}
