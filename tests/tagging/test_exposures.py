"""The exposure browser (pages and API), the mirror of the registry and the Butler repo list.

Expected exposures come from the demo repo's own plan (``plan_exposures``), not from the mirror under test.
"""

from __future__ import annotations

import pytest
from django.test import Client

from lsst_adapter.demo import plan_exposures
from tagging.models import ButlerRepo, Detector, Exposure
from tagging.services import repo_mirror_sync

from .helpers import NIGHT, NIGHT2, exposure_id

pytestmark = pytest.mark.django_db

PLAN = plan_exposures((NIGHT, NIGHT2), science_per_night=4)
API = "/api/v1/exposures/"
PAGE = "/data/repos/demo/exposures/"


def planned(**conditions) -> list[int]:
    """Exposure ids of the plan matching ``conditions``, newest first (the browser's order)."""

    def keep(spec) -> bool:
        for key, value in conditions.items():
            if key == "target":
                if value.lower() not in spec.target.lower():
                    return False
            elif getattr(spec, key) != value:
                return False
        return True

    chosen = [s for s in PLAN if keep(s)]
    return [s.exposure_id for s in sorted(chosen, key=lambda s: (-s.day_obs, -s.seq_num))]


def page_client(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def api_ids(client, **params) -> list[int]:
    response = client.get(API, {"page_size": 500, **params})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == len(body["results"])
    return [e["exposure_id"] for e in body["results"]]


def page_ids(client, **params) -> list[int]:
    response = client.get(PAGE, params)
    assert response.status_code == 200
    return [e.exposure_id for e in response.context["page"].object_list]


FILTERS = [
    ({}, {}),
    ({"day_obs": NIGHT}, {"day_obs": NIGHT}),
    ({"band": "g"}, {"band": "g"}),
    ({"band": "r"}, {"band": "r"}),
    ({"observation_type": "science"}, {"observation_type": "science"}),
    ({"observation_type": "bias"}, {"observation_type": "bias"}),
    ({"target": "DEEP-B"}, {"target": "DEEP-B"}),
    ({"target": "deep"}, {"target": "deep"}),
    (
        {"day_obs": NIGHT2, "observation_type": "science", "band": "i"},
        {"day_obs": NIGHT2, "observation_type": "science", "band": "i"},
    ),
]


@pytest.mark.parametrize(("params", "conditions"), FILTERS)
def test_the_exposure_api_filters_like_the_plan(api, science_user, butler_repo, params, conditions):
    expected = planned(**conditions)
    assert expected  # every filter of the table selects something
    assert api_ids(api(science_user), **params) == expected
    assert api_ids(api(science_user), repo="demo", **params) == expected


@pytest.mark.parametrize(("params", "conditions"), FILTERS)
def test_the_exposure_browser_filters_like_the_plan(science_user, butler_repo, params, conditions):
    assert page_ids(page_client(science_user), **params) == planned(**conditions)


def test_the_filters_select_what_the_demo_repo_holds(api, science_user, butler_repo):
    client = api(science_user)
    assert len(api_ids(client)) == 20
    assert len(api_ids(client, day_obs=NIGHT)) == 10
    assert len(api_ids(client, observation_type="science")) == 8
    assert api_ids(client, band="g") == [exposure_id(150, NIGHT2), exposure_id(151)]
    assert api_ids(client, day_obs=NIGHT2, observation_type="science", band="i") == [exposure_id(152, NIGHT2)]
    assert api_ids(client, q=f"DC_O_{NIGHT}_000153") == [exposure_id(153)]
    assert api_ids(client, q=str(exposure_id(4, NIGHT2))) == [exposure_id(4, NIGHT2)]
    assert api_ids(client, band="y") == []


def test_the_exposure_api_pages(api, science_user, butler_repo):
    client = api(science_user)
    everything = planned()
    seen = []
    url, params = API, {"page_size": 6}
    while url:
        response = client.get(url, params)
        assert response.status_code == 200
        body = response.json()
        assert body["count"] == 20
        assert len(body["results"]) <= 6
        seen += [e["exposure_id"] for e in body["results"]]
        assert {e["repo"] for e in body["results"]} == {"demo"}  # the label, as everywhere in the API
        url, params = body["next"], None
    assert seen == everything
    assert client.get(API, {"page_size": 6, "page": 5}).status_code == 404


def test_a_page_of_exposures_costs_a_fixed_number_of_queries(
    api, science_user, butler_repo, django_assert_max_num_queries
):
    client = api(science_user)
    with django_assert_max_num_queries(8):
        response = client.get(API, {"page_size": 500})
    assert len(response.json()["results"]) == 20


def test_the_exposure_browser_pages(science_user, butler_repo):
    client = page_client(science_user)
    response = client.get(PAGE)
    page = response.context["page"]
    assert (page.paginator.count, page.paginator.num_pages, page.number) == (20, 1, 1)
    assert b"20 exposures" in response.content and b"Page 1 of 1" in response.content
    last = client.get(PAGE, {"page": 99}).context["page"]
    assert last.number == 1  # out of range: the last page
    narrowed = client.get(PAGE, {"observation_type": "science", "day_obs": NIGHT})
    assert b"4 exposures" in narrowed.content


def test_invalid_filters_are_reported(api, science_user, butler_repo):
    response = api(science_user).get(API, {"day_obs": "tonight"})
    assert response.status_code == 400
    assert "day_obs" in response.json()
    page = page_client(science_user).get(PAGE, {"day_obs": "tonight"}, follow=True)
    assert page.status_code == 200
    assert b"not valid" in page.content
    assert page.context["page"].paginator.count == 20


def test_the_exposure_page_shows_its_metadata(science_user, butler_repo):
    spec = next(s for s in PLAN if s.day_obs == NIGHT and s.seq_num == 151)
    response = page_client(science_user).get(f"{PAGE}{spec.exposure_id}/")
    assert response.status_code == 200
    html = response.content.decode()
    for text in (
        spec.obs_id,
        str(spec.exposure_id),
        f"night {NIGHT}, sequence 151",
        f"DemoCam-{spec.band} (band {spec.band})",
        "science · science",
        spec.target,
        "demo-survey",
        "30.0 s",
        "53.1250°, -28.1000°",
        "(one-to-one)",
        "R22_S00",
        "R22_S22",
    ):
        assert text in html, text


def test_a_calibration_exposure_page_has_no_visit(science_user, butler_repo):
    html = page_client(science_user).get(f"{PAGE}{exposure_id(1)}/").content.decode()
    assert "bias" in html and "closed_dome" in html
    assert '<span class="muted">none</span>' in html


def test_unknown_exposures_and_repos_are_not_found(api, science_user, butler_repo):
    pages = page_client(science_user)
    assert pages.get(f"{PAGE}{exposure_id(999)}/").status_code == 404
    assert pages.get("/data/repos/nosuchrepo/exposures/").status_code == 404
    assert pages.get(f"/data/repos/nosuchrepo/exposures/{exposure_id(150)}/").status_code == 404
    client = api(science_user)
    assert client.get(f"{API}{exposure_id(999)}/").status_code == 404
    assert client.get(f"{API}abc/").status_code == 404
    assert client.get(API, {"repo": "nosuchrepo"}).status_code == 404


def test_the_exposure_api_shows_one_exposure(api, science_user, butler_repo):
    body = api(science_user).get(f"{API}{exposure_id(150)}/", {"repo": "demo"}).json()
    assert body["repo"] == "demo"
    assert (body["obs_id"], body["day_obs"], body["seq_num"]) == (f"DC_O_{NIGHT}_000150", NIGHT, 150)
    assert (body["band"], body["physical_filter"], body["observation_type"]) == ("u", "DemoCam-u", "science")
    assert body["visit_id"] == exposure_id(150)
    assert body["target_name"] == "DEEP-A" and body["exposure_time"] == 30.0


def test_anonymous_visitors_are_sent_to_log_in(api, butler_repo):
    for url in ("/data/repos/", PAGE, f"{PAGE}{exposure_id(150)}/"):
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert api(None).get(API).status_code in (401, 403)
    assert api(None).get("/api/v1/butler-repos/").status_code in (401, 403)


def test_exposures_need_a_repo_when_there_are_several(api, owner, science_user, butler_repo, settings):
    settings.CM_BUTLER_REPO_ROOTS = [*settings.CM_BUTLER_REPO_ROOTS, "/repo"]
    assert (
        api(owner).post("/api/v1/butler-repos/", {"label": "second", "config_uri": "/repo/second"}).status_code == 201
    )
    response = api(science_user).get(API)
    assert response.status_code == 400
    assert "repo" in response.json()
    assert len(api_ids(api(science_user), repo="demo")) == 20
    assert api_ids(api(science_user), repo="second") == []


# --- the mirror ----------------------------------------------------------------------------------


def test_the_mirror_sync_is_idempotent(butler_repo):
    before = {e.exposure_id: (e.pk, e.obs_id, e.target_name, e.begin) for e in Exposure.objects.all()}
    detectors = dict(Detector.objects.values_list("detector_id", "full_name"))
    assert len(before) == 20
    assert detectors == {i: f"R22_S{i // 3}{i % 3}" for i in range(9)}

    assert repo_mirror_sync(repo=butler_repo) == {"detectors": 9, "exposures": 20, "removed": 0}
    assert repo_mirror_sync(repo=butler_repo) == {"detectors": 9, "exposures": 20, "removed": 0}

    after = {e.exposure_id: (e.pk, e.obs_id, e.target_name, e.begin) for e in Exposure.objects.all()}
    assert after == before
    assert dict(Detector.objects.values_list("detector_id", "full_name")) == detectors
    assert sorted(before) == sorted(s.exposure_id for s in PLAN)
    butler_repo.refresh_from_db()
    assert butler_repo.mirror_synced is not None


def test_the_mirror_sync_repairs_changed_and_removes_stale_rows(butler_repo):
    Exposure.objects.filter(exposure_id=exposure_id(150)).update(target_name="edited", band="x")
    template = Exposure.objects.get(exposure_id=exposure_id(151))
    template.pk, template.exposure_id, template.obs_id = None, exposure_id(999), "DC_O_gone"
    template.save()
    Detector.objects.create(repo=butler_repo, instrument="DemoCam", detector_id=99, full_name="R99_S99")

    assert repo_mirror_sync(repo=butler_repo) == {"detectors": 9, "exposures": 20, "removed": 2}

    repaired = Exposure.objects.get(exposure_id=exposure_id(150))
    assert (repaired.target_name, repaired.band) == ("DEEP-A", "u")
    assert not Exposure.objects.filter(exposure_id=exposure_id(999)).exists()
    assert not Detector.objects.filter(detector_id=99).exists()
    assert Exposure.objects.count() == 20


def test_only_staff_may_re_read_the_registry(api, owner, science_user, butler_repo):
    Exposure.objects.filter(exposure_id=exposure_id(150)).delete()
    assert api(science_user).post("/api/v1/butler-repos/demo/sync/").status_code == 403
    assert page_client(science_user).post("/data/repos/demo/sync/").status_code == 403
    assert Exposure.objects.count() == 19
    response = api(owner).post("/api/v1/butler-repos/demo/sync/")
    assert response.status_code == 200
    assert response.json() == {"detectors": 9, "exposures": 20, "removed": 0}
    Exposure.objects.filter(exposure_id=exposure_id(151)).delete()
    page = page_client(owner).post("/data/repos/demo/sync/", follow=True)
    assert page.status_code == 200
    assert b"Read 20 exposures and 9 detectors from demo." in page.content
    assert Exposure.objects.count() == 20


# --- Butler repos --------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["owner", "science_user", "outsider", "admin"])
def test_every_logged_in_user_lists_the_butler_repos(api, request, butler_repo, butler_root, who):
    user = request.getfixturevalue(who)
    response = api(user).get("/api/v1/butler-repos/")
    assert response.status_code == 200
    [repo] = response.json()
    assert (repo["label"], repo["config_uri"], repo["exposure_count"]) == ("demo", butler_root, 20)
    assert repo["default_instrument"] == "DemoCam" and repo["mirror_synced"]
    assert api(user).get("/api/v1/butler-repos/demo/").json()["label"] == "demo"
    assert api(user).get("/api/v1/butler-repos/nosuch/").status_code == 404
    page = page_client(user).get("/data/repos/")
    assert page.status_code == 200 and b"demo" in page.content


def test_only_staff_may_add_butler_repos(api, owner, science_user, outsider, butler_repo, settings):
    settings.CM_BUTLER_REPO_ROOTS = [*settings.CM_BUTLER_REPO_ROOTS, "/repo"]
    data = {"label": "embargo", "config_uri": "/repo/embargo", "description": "the embargo repo"}
    assert api(science_user).post("/api/v1/butler-repos/", data).status_code == 403
    assert api(outsider).post("/api/v1/butler-repos/", data).status_code == 403
    assert not ButlerRepo.objects.filter(label="embargo").exists()
    response = api(owner).post("/api/v1/butler-repos/", data)
    assert response.status_code == 201
    assert response.json()["label"] == "embargo"
    assert ButlerRepo.objects.get(label="embargo").config_uri == "/repo/embargo"
    assert api(owner).post("/api/v1/butler-repos/", data).status_code == 400  # the label is taken
    assert api(owner).post("/api/v1/butler-repos/", {"label": "-bad", "config_uri": "/repo/x"}).status_code == 400
    labels = [r["label"] for r in api(science_user).get("/api/v1/butler-repos/").json()]
    assert labels == ["demo", "embargo"]


def test_the_exposure_page_lists_the_sets_holding_it_that_the_user_may_see(science_user, owner, butler_repo):
    from tagging.models import SetVisibility
    from tagging.services import UploadSource, dataidset_create

    def make(name: str, records: list[dict], visibility: str) -> None:
        dataidset_create(
            user=owner, repo_label="demo", name=name, reason="r", visibility=visibility,
            source=UploadSource(kind="records", records=records),
        )  # fmt: skip

    exposure = exposure_id(151)
    make("public-exp", [{"exposure": exposure, "detector": 1}], SetVisibility.PUBLIC)
    make("public-visit", [{"visit": exposure, "detector": 2}], SetVisibility.PUBLIC)
    make("private-exp", [{"exposure": exposure, "detector": 3}], SetVisibility.PRIVATE)
    make("other-exp", [{"exposure": exposure_id(152), "detector": 1}], SetVisibility.PUBLIC)
    html = page_client(science_user).get(f"{PAGE}{exposure}/").content.decode()
    section = html[html.index('id="dataid-sets"') :]
    assert "public-exp" in section and "public-visit" in section
    assert "private-exp" not in section and "other-exp" not in section
    owner_html = page_client(owner).get(f"{PAGE}{exposure}/").content.decode()
    assert "private-exp" in owner_html[owner_html.index('id="dataid-sets"') :]
    empty = page_client(science_user).get(f"{PAGE}{exposure_id(153)}/").content.decode()
    assert "No DataID set you may see holds this exposure" in empty
