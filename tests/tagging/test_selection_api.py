"""The selection API and pages: count, freeze, re-run for each role; errors name the term; the set page
shows the recipe of a frozen selection."""

from __future__ import annotations

import pytest
from django.test import Client

from tagging.models import DataIdSet, DataIdSetVersion
from tests.conftest import PASSWORD
from tests.tagging.selection_factories import add_tag_rows, make_tag_table

COUNT = "/api/v1/selections/count"
FREEZE = "/api/v1/selections/freeze"
RERUN = "/api/v1/selections/rerun"


@pytest.fixture
def tables(butler_repo, owner):
    public = make_tag_table(
        owner=owner,
        repo=butler_repo,
        name="good-psf",
        key_dimensions=["instrument", "exposure"],
        columns=[("fwhm", "float")],
        visibility="public",
    )
    add_tag_rows(
        public,
        [({"instrument": "DemoCam", "exposure": 2025112100150 + i}, {"fwhm": 0.6 + i / 10}) for i in range(4)],
        user=owner,
    )
    make_tag_table(
        owner=owner, repo=butler_repo, name="secret", key_dimensions=["instrument", "exposure"], columns=[("x", "int")]
    )
    return public


RECIPE = {
    "repo": "demo",
    "dimensions": ["exposure"],
    "terms": [
        {"mode": "include", "where": "exposure.observation_type = 'science'"},
        {"mode": "include", "tag_table": "good-psf", "condition": "fwhm < 0.85"},
    ],
}


def test_count_returns_total_per_term_counts_and_preview(api, tables, science_user):
    response = api(science_user).post(COUNT, {"recipe": RECIPE}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["count"] == 3  # fwhm 0.6, 0.7, 0.8 of 0.6 .. 0.9
    assert [t["after"] for t in body["terms"]] == [8, 3]
    assert [p["exposure"] for p in body["preview"]] == [2025112100150, 2025112100151, 2025112100152]


def test_count_accepts_a_bare_recipe(api, tables, owner):
    assert api(owner).post(COUNT, RECIPE, format="json").json()["count"] == 3


def test_anonymous_gets_401(api, tables):
    assert api().post(COUNT, {"recipe": RECIPE}, format="json").status_code in (401, 403)


def test_bad_recipe_is_400_naming_the_key(api, tables, owner):
    bad = {**RECIPE, "terms": [{"tag_table": "good-psf", "condition": "fwhm << 1"}]}
    response = api(owner).post(COUNT, {"recipe": bad}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["where"] == "terms[0].condition"
    assert "position 7" in response.json()["detail"]


def test_a_table_the_user_may_not_see_is_404_naming_the_term(api, tables, science_user):
    recipe = {**RECIPE, "terms": [{"mode": "exclude", "tag_table": "secret"}]}
    response = api(science_user).post(COUNT, {"recipe": recipe}, format="json")
    assert response.status_code == 404
    assert response.json()["detail"] == "terms[0]: no tag table named 'secret' in demo that you may see."


def test_science_user_cannot_freeze(api, tables, science_user):
    response = api(science_user).post(FREEZE, {"recipe": RECIPE, "name": "x", "reason": "y"}, format="json")
    assert response.status_code == 403
    assert not DataIdSet.objects.exists()


def test_staff_freezes_reruns_and_the_set_page_explains_it(api, tables, owner, science_user):
    response = api(owner).post(
        FREEZE, {"recipe": RECIPE, "name": "good", "reason": "PSF inputs", "visibility": "public"}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["count"] == 3 and body["source"]["recipe"]["terms"][1]["condition"] == "fwhm < 0.85"
    assert body["url"].endswith(f"/data/sets/{body['dataid_set_id']}/?version=1")
    version = DataIdSetVersion.objects.get(pk=body["version_id"])
    assert version.source_kind == "selection"

    rerun = api(science_user).post(RERUN, {"version_id": version.pk}, format="json")
    assert rerun.status_code == 200 and rerun.json()["unchanged"] is True

    web = Client()
    web.login(username=science_user.username, password=PASSWORD)
    page = web.get(f"/data/sets/{version.dataid_set_id}/").content.decode()
    assert 'id="set-selection"' in page
    assert "Include rows of tag table good-psf where fwhm &lt; 0.85" in page
    diff = web.get(f"/data/sets/{version.dataid_set_id}/rerun/?version=1").content.decode()
    assert 'id="rerun-diff"' in diff and "Unchanged" in diff


def test_freeze_with_a_bad_name_stores_nothing(api, tables, owner):
    response = api(owner).post(FREEZE, {"recipe": RECIPE, "name": "no spaces", "reason": "r"}, format="json")
    assert response.status_code == 400 and "name" in response.json()
    assert not DataIdSet.objects.exists()


def test_builder_page_needs_login_and_offers_only_visible_tables(tables, science_user, client):
    assert client.get("/data/selections/").status_code == 302
    client.login(username=science_user.username, password=PASSWORD)
    page = client.get("/data/selections/").content.decode()
    assert "Selection builder" in page and "good-psf" in page and "secret" not in page
    assert 'id="sel-freeze"' not in page  # science users count and preview only
