"""Who may see, download, change and share DataID sets, through the API and the pages.

People: alice (staff, owner of the sets), bob (other staff), carol (science), dave (logged in, no
role), admin (superuser), erin (staff, a set is shared with her to view), frank (science, in the group
``survey-team`` a set is shared with) and anonymous visitors.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from core.roles import set_role
from tagging.models import DataIdSet, DataIdSetVersion
from tagging.services import dataidset_share

from .helpers import exposure_id, ids

pytestmark = pytest.mark.django_db

URL = "/api/v1/dataid-sets/"
PAGE = "/data/sets/"


def make_user(username: str, role: str | None):
    user = get_user_model().objects.create_user(username, f"{username}@example.org", "pw")
    if role:
        set_role(user, role)
    return user


@pytest.fixture
def erin(db):
    return make_user("erin", "staff")


@pytest.fixture
def frank(db):
    frank = make_user("frank", "science")
    Group.objects.create(name="survey-team").user_set.add(frank)
    return frank


@pytest.fixture
def people(owner, other_staff, science_user, outsider, admin, erin, frank):
    return {
        "anonymous": None,
        "owner": owner,
        "other_staff": other_staff,
        "science": science_user,
        "outsider": outsider,
        "admin": admin,
        "erin": erin,
        "frank": frank,
    }


@pytest.fixture
def private_set(make_set) -> DataIdSet:
    return make_set("private-set", ids([150], [0, 1])).dataid_set


@pytest.fixture
def public_set(make_set) -> DataIdSet:
    return make_set("public-set", ids([151], [2, 3]), visibility="public").dataid_set


def page_client(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


API_READS = ["", "download/", "download/?format=csv", "download/?format=ecsv", "versions/", "tag-collection/"]


def api_reads(client, dataid_set) -> list[int]:
    return [client.get(f"{URL}{dataid_set.pk}/{suffix}").status_code for suffix in API_READS]


def page_reads(client, dataid_set) -> list[int]:
    return [
        client.get(f"{PAGE}{dataid_set.pk}/").status_code,
        client.get(f"{PAGE}{dataid_set.pk}/download/?format=json").status_code,
    ]


# --- reading: private and public sets, API and pages ---------------------------------------------

PRIVATE_READ = {
    "owner": 200,
    "admin": 200,
    "other_staff": 404,
    "science": 404,
    "outsider": 404,
    "erin": 404,
    "frank": 404,
}


@pytest.mark.parametrize(("who", "status"), PRIVATE_READ.items())
def test_a_private_set_is_seen_by_its_owner_and_admins_only(api, people, private_set, who, status):
    assert api_reads(api(people[who]), private_set) == [status] * len(API_READS)
    assert page_reads(page_client(people[who]), private_set) == [status, status]


@pytest.mark.parametrize("who", ["owner", "admin", "other_staff", "science", "outsider", "erin", "frank"])
def test_a_public_set_is_seen_by_every_logged_in_user(api, people, public_set, who):
    assert api_reads(api(people[who]), public_set) == [200] * len(API_READS)
    assert page_reads(page_client(people[who]), public_set) == [200, 200]


@pytest.mark.parametrize("fixture", ["private_set", "public_set"])
def test_anonymous_visitors_see_no_set(api, request, fixture):
    dataid_set = request.getfixturevalue(fixture)
    client = api(None)
    for suffix in API_READS:
        assert client.get(f"{URL}{dataid_set.pk}/{suffix}").status_code in (401, 403)
    assert client.get(URL).status_code in (401, 403)
    pages = page_client(None)
    for url in (f"{PAGE}{dataid_set.pk}/", f"{PAGE}{dataid_set.pk}/download/", PAGE):
        response = pages.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")


def test_the_list_shows_each_user_what_they_may_see(api, people, private_set, public_set):
    def listed(user) -> set[str]:
        response = api(user).get(URL)
        assert response.status_code == 200
        return {s["name"] for s in response.json()["results"]}

    assert listed(people["owner"]) == {"private-set", "public-set"}
    assert listed(people["admin"]) == {"private-set", "public-set"}
    for who in ("other_staff", "science", "outsider", "erin", "frank"):
        assert listed(people[who]) == {"public-set"}, who
    dataidset_share(user=people["owner"], set_id=private_set.pk, username="erin")
    assert listed(people["erin"]) == {"private-set", "public-set"}
    page = page_client(people["science"]).get(PAGE)
    assert page.status_code == 200
    assert b"public-set" in page.content and b"private-set" not in page.content


def test_science_users_may_download_public_sets(api, science_user, public_set):
    response = api(science_user).get(f"{URL}{public_set.pk}/download/?format=json")
    assert response.status_code == 200
    data = json.loads(b"".join(response.streaming_content))
    assert {(d["exposure"], d["detector"]) for d in data} == {(exposure_id(151), 2), (exposure_id(151), 3)}


# --- sharing -------------------------------------------------------------------------------------


def test_sharing_with_a_user_to_view_lets_them_see_but_not_change(api, owner, erin, private_set):
    response = api(owner).post(f"{URL}{private_set.pk}/share/", {"username": "erin", "permission": "view"})
    assert response.status_code == 200
    client = api(erin)
    assert api_reads(client, private_set) == [200] * len(API_READS)
    assert page_reads(page_client(erin), private_set) == [200, 200]
    # Seeing is not changing: no sharing, no new version.
    assert client.post(f"{URL}{private_set.pk}/share/", {"username": "bob"}).status_code == 403
    response = client.post(
        URL, {"name": "private-set", "repo": "demo", "reason": "r", "data_ids": ids([152], [0])}, format="json"
    )
    assert response.status_code == 400
    assert "is not available in demo" in json.dumps(response.json())
    assert private_set.versions.count() == 1
    detail = page_client(erin).get(f"{PAGE}{private_set.pk}/")
    assert b'id="sharing"' not in detail.content


def test_sharing_with_a_staff_member_to_change_lets_them_add_versions_and_share(
    api, owner, other_staff, outsider, private_set
):
    response = api(owner).post(f"{URL}{private_set.pk}/share/", {"username": "bob", "permission": "change"})
    assert response.status_code == 200
    client = api(other_staff)
    assert api_reads(client, private_set) == [200] * len(API_READS)
    response = client.post(
        URL, {"name": "private-set", "repo": "demo", "reason": "more", "data_ids": ids([152], [0])}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["number"] == 2
    assert response.json()["created_by"] == "bob"
    assert client.post(f"{URL}{private_set.pk}/share/", {"username": "dave"}).status_code == 200
    detail = page_client(other_staff).get(f"{PAGE}{private_set.pk}/")
    assert b'id="sharing"' in detail.content


def test_a_science_user_shared_with_change_may_still_only_look(api, owner, science_user, private_set):
    dataidset_share(user=owner, set_id=private_set.pk, username="carol", permission="change")
    client = api(science_user)
    assert api_reads(client, private_set) == [200] * len(API_READS)
    assert client.post(f"{URL}{private_set.pk}/share/", {"username": "dave"}).status_code == 403
    response = client.post(
        URL, {"name": "private-set", "repo": "demo", "reason": "r", "data_ids": ids([152], [0])}, format="json"
    )
    assert response.status_code == 403
    assert private_set.versions.count() == 1


def test_sharing_with_a_group_lets_its_members_see(api, owner, frank, science_user, private_set):
    response = api(owner).post(f"{URL}{private_set.pk}/share/", {"group": "survey-team"})
    assert response.status_code == 200
    assert api_reads(api(frank), private_set) == [200] * len(API_READS)
    assert page_reads(page_client(frank), private_set) == [200, 200]
    assert api_reads(api(science_user), private_set) == [404] * len(API_READS)


def test_stopping_sharing_hides_the_set_again(api, owner, erin, private_set):
    client = api(owner)
    client.post(f"{URL}{private_set.pk}/share/", {"username": "erin"})
    assert api(erin).get(f"{URL}{private_set.pk}/").status_code == 200
    response = client.post(f"{URL}{private_set.pk}/share/", {"username": "erin", "grant": False})
    assert response.status_code == 200
    assert api_reads(api(erin), private_set) == [404] * len(API_READS)


def test_sharing_needs_exactly_one_existing_user_or_group(api, owner, private_set):
    client = api(owner)
    assert client.post(f"{URL}{private_set.pk}/share/", {}).status_code == 400
    assert client.post(f"{URL}{private_set.pk}/share/", {"username": "erin", "group": "staff"}).status_code == 400
    response = client.post(f"{URL}{private_set.pk}/share/", {"username": "nobody"})
    assert response.status_code == 400
    assert "nobody" in json.dumps(response.json())
    assert client.post(f"{URL}{private_set.pk}/share/", {"group": "no-such-group"}).status_code == 400


def test_sharing_through_the_page(owner, erin, private_set, api):
    client = page_client(owner)
    response = client.post(f"{PAGE}{private_set.pk}/share/", {"username": "erin", "permission": "view", "grant": "1"})
    assert response.status_code == 302
    assert api(erin).get(f"{URL}{private_set.pk}/").status_code == 200
    detail = client.get(f"{PAGE}{private_set.pk}/")
    assert b"<strong>erin</strong> may view" in detail.content


# --- an invisible set is 404 everywhere ----------------------------------------------------------


@pytest.mark.parametrize("who", ["other_staff", "science", "outsider"])
def test_an_invisible_set_is_not_found_for_every_action(api, people, private_set, who):
    client = api(people[who])
    base = f"{URL}{private_set.pk}/"
    assert client.get(base).status_code == 404
    assert client.get(f"{base}download/").status_code == 404
    assert client.get(f"{base}versions/").status_code == 404
    assert client.get(f"{base}tag-collection/").status_code == 404
    tag = {"dataset_type": "raw", "input_collections": ["DemoCam/raw/all"]}
    assert client.post(f"{base}tag-collection/", tag).status_code == 404
    assert client.post(f"{base}share/", {"username": people[who].username}).status_code == 404
    pages = page_client(people[who])
    assert pages.get(f"{PAGE}{private_set.pk}/").status_code == 404
    assert pages.get(f"{PAGE}{private_set.pk}/download/").status_code == 404
    assert pages.post(f"{PAGE}{private_set.pk}/share/", {"username": "dave"}).status_code == 404
    assert pages.post(f"{PAGE}{private_set.pk}/tag/", {"dataset_type": "raw"}).status_code == 404
    private_set.refresh_from_db()
    version = private_set.versions.get()
    assert version.tag_status == "none"
    assert not private_set.dataidsetuserobjectpermission_set.exists()


def test_a_set_that_does_not_exist_is_not_found(api, owner):
    assert api(owner).get(f"{URL}999999/").status_code == 404
    assert api(owner).get(f"{URL}not-a-number/").status_code == 404
    assert page_client(owner).get(f"{PAGE}999999/").status_code == 404


def test_an_invisible_set_cannot_be_combined(api, other_staff, make_set, private_set):
    mine = make_set("bobs", ids([150], [0]), user=other_staff)
    response = api(other_staff).post(
        f"{URL}algebra/",
        {
            "operation": "union",
            "parents": [{"set": mine.dataid_set_id}, {"set": private_set.pk}],
            "name": "stolen",
            "reason": "r",
        },
    )
    assert response.status_code == 404
    assert not DataIdSet.objects.filter(name="stolen").exists()


# --- science users never create ------------------------------------------------------------------


@pytest.mark.parametrize("who", ["science", "outsider"])
def test_users_without_the_staff_role_cannot_create_sets(api, people, public_set, who):
    client = api(people[who])
    response = client.post(
        URL, {"name": "mine", "repo": "demo", "reason": "r", "data_ids": ids([150], [0])}, format="json"
    )
    assert response.status_code == 403
    response = client.post(
        f"{URL}algebra/",
        {
            "operation": "union",
            "parents": [{"set": public_set.pk}, {"set": public_set.pk}],
            "name": "mine2",
            "reason": "r",
        },
    )
    assert response.status_code == 403
    tag = {"dataset_type": "raw", "input_collections": ["DemoCam/raw/all"]}
    assert client.post(f"{URL}{public_set.pk}/tag-collection/", tag).status_code == 403
    assert client.post(f"{URL}{public_set.pk}/share/", {"username": people[who].username}).status_code == 403
    pages = page_client(people[who])
    assert pages.get(f"{PAGE}new/").status_code == 403
    assert pages.post(f"{PAGE}new/", {"source": "query"}).status_code == 403
    assert pages.post(f"{PAGE}{public_set.pk}/combine/", {"operation": "union"}).status_code == 403
    assert pages.post(f"{PAGE}{public_set.pk}/tag/", {"dataset_type": "raw"}).status_code == 403
    assert DataIdSet.objects.count() == 1
    assert DataIdSetVersion.objects.get().tag_status == "none"


def test_staff_may_create_sets_through_the_page(owner, butler_repo):
    client = page_client(owner)
    assert client.get(f"{PAGE}new/").status_code == 200
    response = client.post(
        f"{PAGE}new/",
        {
            "source": "query",
            "repo": "demo",
            "name": "from-page",
            "reason": "page test",
            "visibility": "private",
            "query": "instrument = 'DemoCam' AND exposure.day_obs = 20251122 AND exposure.seq_num = 150",
            "dimensions": "exposure, detector",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    version = DataIdSetVersion.objects.get(dataid_set__name="from-page")
    assert version.count == 9
    assert response["Location"] == f"{PAGE}{version.dataid_set_id}/"
