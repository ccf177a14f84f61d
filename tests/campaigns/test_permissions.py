"""The permission matrix: who may read and who may change what, on every page and every API endpoint.

Actors (``people`` fixture):

* ``anonymous``: not logged in;
* ``science``: role science (read-only);
* ``outsider``: logged in, no role;
* ``other_staff``: staff without any right on the campaign;
* ``owner``: staff, owns the campaign;
* ``collaborator``: staff, listed as a collaborator;
* ``shared_change``: staff, given ``change`` with ``campaign_share``;
* ``shared_view``: staff, given only ``view`` with ``campaign_share``;
* ``science_shared_change``: a science user given ``change``: sees it, still cannot change it;
* ``admin``: superuser.

Outcomes: ``OK`` (the endpoint's success status, and the database changed exactly
when the endpoint writes), ``LOGIN`` (page: redirect to /login/; API: DRF's
answer to a request without credentials, which is 403 because SessionAuthentication
comes first and sends no WWW-Authenticate header), ``DENIED`` (403) and ``HIDDEN``
(404). Whatever is refused leaves the database and MEDIA_ROOT untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from campaigns import services
from campaigns.choices import GroupStatus
from campaigns.models import Attachment, Campaign, Group
from tests.campaigns.helpers import db_state, edit_form_data, make_user, new_form_data
from tests.conftest import MINIMAL_YAML, definition

OK, LOGIN, DENIED, HIDDEN = "ok", "login", "403", "404"
VISIBILITIES = ("public", "staff", "private")

# ---------------------------------------------------------------- the matrix
# Reading one campaign (detail, export, steps, history, attachments, downloads).
#                             public   staff   private
READ = {
    "anonymous":             (LOGIN,  LOGIN,  LOGIN),
    "science":               (OK,     HIDDEN, HIDDEN),
    "outsider":              (OK,     HIDDEN, HIDDEN),
    "other_staff":           (OK,     OK,     HIDDEN),
    "owner":                 (OK,     OK,     OK),
    "collaborator":          (OK,     OK,     OK),
    "shared_change":         (OK,     OK,     OK),
    "shared_view":           (OK,     OK,     OK),
    "science_shared_change": (OK,     OK,     OK),
    "admin":                 (OK,     OK,     OK),
}  # fmt: skip

# Changing one campaign (edit, status, archive, restore, share, attachments).
#                             public   staff   private
WRITE = {
    "anonymous":             (LOGIN,  LOGIN,  LOGIN),
    "science":               (DENIED, HIDDEN, HIDDEN),
    "outsider":              (DENIED, HIDDEN, HIDDEN),
    "other_staff":           (DENIED, DENIED, HIDDEN),
    "owner":                 (OK,     OK,     OK),
    "collaborator":          (OK,     OK,     OK),
    "shared_change":         (OK,     OK,     OK),
    "shared_view":           (DENIED, DENIED, DENIED),
    "science_shared_change": (DENIED, DENIED, DENIED),
    "admin":                 (OK,     OK,     OK),
}  # fmt: skip

# Cloning: any staff member who may see the campaign (the copy is theirs).
#                             public   staff   private
CLONE = {
    "anonymous":             (LOGIN,  LOGIN,  LOGIN),
    "science":               (DENIED, HIDDEN, HIDDEN),
    "outsider":              (DENIED, HIDDEN, HIDDEN),
    "other_staff":           (OK,     OK,     HIDDEN),
    "owner":                 (OK,     OK,     OK),
    "collaborator":          (OK,     OK,     OK),
    "shared_change":         (OK,     OK,     OK),
    "shared_view":           (OK,     OK,     OK),
    "science_shared_change": (DENIED, DENIED, DENIED),
    "admin":                 (OK,     OK,     OK),
}  # fmt: skip

# Creating a campaign (new, import): staff only.
CREATE = {
    "anonymous": LOGIN,
    "science": DENIED,
    "outsider": DENIED,
    "other_staff": OK,
    "owner": OK,
    "admin": OK,
}

# Pages and endpoints about no one campaign (list, token, status, API schema and docs).
GLOBAL = {
    "anonymous": LOGIN,
    "science": OK,
    "outsider": OK,
    "other_staff": OK,
    "owner": OK,
    "admin": OK,
}


def per_visibility(table: dict[str, tuple[str, str, str]]) -> list:
    return [
        pytest.param(actor, visibility, outcomes[i], id=f"{actor}-{visibility}-{outcomes[i]}")
        for actor, outcomes in table.items()
        for i, visibility in enumerate(VISIBILITIES)
    ]


def per_actor(table: dict[str, str]) -> list:
    return [pytest.param(actor, outcome, id=f"{actor}-{outcome}") for actor, outcome in table.items()]


# ---------------------------------------------------------------- endpoints
@dataclass
class World:
    people: dict[str, Any]
    api: Callable
    campaign: Campaign | None = None
    attachment: Attachment | None = None


@dataclass(frozen=True)
class Endpoint:
    id: str
    method: str
    path: str
    api: bool = False
    ok: int = 200
    writes: bool = False
    data: Callable[[World], Any] | None = None
    format: str | None = None  # API: "json" or "multipart"; or a content type
    prepare: Callable[[World], None] | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return self.id


def _upload(name: str = "notes.txt", content: bytes = b"run notes\n") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/plain")


def _archive_first(world: World) -> None:
    assert world.campaign is not None
    services.campaign_archive(user=world.people["owner"], campaign_id=world.campaign.pk)


def _version(world: World) -> int:
    assert world.campaign is not None
    world.campaign.refresh_from_db()
    return world.campaign.version


C = "/campaigns/{pk}"
A = "/api/v1/campaigns/{pk}"

PAGE_READS = [
    Endpoint("page-detail", "get", f"{C}/"),
    Endpoint("page-export", "get", f"{C}/export/"),
    Endpoint("page-attachment-download", "get", f"{C}/attachments/{{att}}/"),
]
API_READS = [
    Endpoint("api-retrieve", "get", f"{A}/", api=True),
    Endpoint("api-export", "get", f"{A}/export/", api=True),
    Endpoint("api-steps", "get", f"{A}/steps/", api=True),
    Endpoint("api-history", "get", f"{A}/history/", api=True),
    Endpoint("api-attachments-list", "get", f"{A}/attachments/", api=True),
    Endpoint("api-attachment-download", "get", f"{A}/attachments/{{att}}/", api=True),
]
PAGE_WRITES = [
    Endpoint("page-edit-get", "get", f"{C}/edit/"),
    Endpoint(
        "page-edit-post",
        "post",
        f"{C}/edit/",
        ok=302,
        writes=True,
        data=lambda w: edit_form_data(w.campaign, reason="Edited through the page", comment="matrix"),
    ),
    Endpoint(
        "page-status",
        "post",
        f"{C}/status/",
        ok=302,
        writes=True,
        data=lambda w: {"status": "ready", "version": _version(w)},
    ),
    Endpoint("page-archive", "post", f"{C}/archive/", ok=302, writes=True, data=lambda w: {"archived": "1"}),
    Endpoint(
        "page-share",
        "post",
        f"{C}/share/",
        ok=302,
        writes=True,
        data=lambda w: {"group": "science", "permission": "view", "grant": "1"},
    ),
    Endpoint(
        "page-attachment-upload", "post", f"{C}/attachments/", ok=302, writes=True, data=lambda w: {"file": _upload()}
    ),
    Endpoint(
        "page-attachment-delete", "post", f"{C}/attachments/{{att}}/delete/", ok=302, writes=True, data=lambda w: {}
    ),
]
API_WRITES = [
    Endpoint(
        "api-patch",
        "patch",
        f"{A}/",
        api=True,
        writes=True,
        data=lambda w: {"version": _version(w), "reason": "Edited through the API"},
    ),
    Endpoint(
        "api-put", "put", f"{A}/", api=True, writes=True, data=lambda w: {"version": _version(w), "reason": "Put"}
    ),
    Endpoint("api-delete-archives", "delete", f"{A}/", api=True, ok=204, writes=True),
    Endpoint(
        "api-attachment-upload",
        "post",
        f"{A}/attachments/",
        api=True,
        ok=201,
        writes=True,
        format="multipart",
        data=lambda w: {"file": _upload()},
    ),
    Endpoint("api-attachment-delete", "delete", f"{A}/attachments/{{att}}/", api=True, ok=204, writes=True),
    Endpoint("api-status", "post", f"{A}/status/", api=True, writes=True, data=lambda w: {"status": "ready"}),
    Endpoint("api-share", "post", f"{A}/share/", api=True, writes=True, data=lambda w: {"group": "science"}),
    Endpoint("api-restore", "post", f"{A}/restore/", api=True, writes=True, prepare=_archive_first),
]
CLONES = [
    Endpoint("page-clone-get", "get", f"{C}/clone/"),
    Endpoint("page-clone-post", "post", f"{C}/clone/", ok=302, writes=True, data=lambda w: {"name": "the-copy"}),
    Endpoint("api-clone", "post", f"{A}/clone/", api=True, ok=201, writes=True, data=lambda w: {"name": "the-copy"}),
]
CREATES = [
    Endpoint("page-new-get", "get", "/campaigns/new/"),
    Endpoint("page-new-post", "post", "/campaigns/new/", ok=302, writes=True, data=lambda w: new_form_data()),
    Endpoint("page-import-get", "get", "/campaigns/import/"),
    Endpoint(
        "page-import-post", "post", "/campaigns/import/", ok=302, writes=True, data=lambda w: {"yaml": MINIMAL_YAML}
    ),
    Endpoint(
        "api-create",
        "post",
        "/api/v1/campaigns/",
        api=True,
        ok=201,
        writes=True,
        data=lambda w: definition(name="made-by-api"),
    ),
    Endpoint(
        "api-import",
        "post",
        "/api/v1/campaigns/import/",
        api=True,
        ok=201,
        writes=True,
        data=lambda w: MINIMAL_YAML,
        format="application/yaml",
    ),
]
GLOBALS = [
    Endpoint("page-list", "get", "/campaigns/"),
    Endpoint("page-home", "get", "/", ok=302),
    Endpoint("page-token-get", "get", "/account/token/"),
    Endpoint("page-token-post", "post", "/account/token/", ok=200, writes=True, data=lambda w: {}),
    Endpoint("page-status-get", "get", "/status/"),
    Endpoint("api-list", "get", "/api/v1/campaigns/", api=True),
    Endpoint("api-schema", "get", "/api/schema/", api=True),
    Endpoint("api-docs", "get", "/api/docs/", api=True),
]


# ---------------------------------------------------------------- fixtures and the one checker
@pytest.fixture
def people(owner, other_staff, science_user, outsider, admin) -> dict[str, Any]:
    return {
        "anonymous": None,
        "owner": owner,
        "other_staff": other_staff,
        "science": science_user,
        "outsider": outsider,
        "admin": admin,
        "collaborator": make_user("erin", "staff"),
        "shared_change": make_user("frank", "staff"),
        "shared_view": make_user("grace", "staff"),
        "science_shared_change": make_user("heidi", "science"),
    }


@pytest.fixture
def world(people, demo_repo, api, visibility) -> World:
    """One campaign of the given visibility, with a collaborator, three shares and one attachment."""
    owner = people["owner"]
    campaign = services.campaign_create(
        user=owner, data=definition(name="matrix", visibility=visibility, collaborators=["erin"])
    )
    services.campaign_share(user=owner, campaign_id=campaign.pk, username="frank", permission="change")
    services.campaign_share(user=owner, campaign_id=campaign.pk, username="grace", permission="view")
    services.campaign_share(user=owner, campaign_id=campaign.pk, username="heidi", permission="change")
    attachment = services.attachment_add(user=owner, campaign_id=campaign.pk, upload=_upload("seed.txt", b"seed"))
    campaign.refresh_from_db()
    return World(people=people, api=api, campaign=campaign, attachment=attachment)


@pytest.fixture
def bare_world(people, demo_repo, api) -> World:
    return World(people=people, api=api)


def client_for(endpoint: Endpoint, world: World, actor: str):
    """The API client (token) or page client (session) of ``actor``; ``None`` means not logged in."""
    user = world.people[actor]
    if endpoint.api:
        return world.api(user)
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def send(endpoint: Endpoint, world: World, client):
    url = endpoint.path.format(
        pk=world.campaign.pk if world.campaign else 0, att=world.attachment.pk if world.attachment else 0
    )
    data = endpoint.data(world) if endpoint.data else None
    kwargs: dict[str, Any] = {}
    if endpoint.api and endpoint.format in (None, "json", "multipart"):
        kwargs["format"] = endpoint.format or "json"
    elif endpoint.api:
        kwargs["content_type"] = endpoint.format
    response = getattr(client, endpoint.method)(url, data, **kwargs)
    if getattr(response, "streaming", False):
        # Reading to the end closes the file (the test client closes it then, without closing the DB connection).
        b"".join(response.streaming_content)
    return response


def check(endpoint: Endpoint, world: World, actor: str, expected: str) -> None:
    if endpoint.prepare:
        endpoint.prepare(world)
    client = client_for(endpoint, world, actor)
    before = db_state(tokens=True)
    response = send(endpoint, world, client)
    after = db_state(tokens=True)
    if expected == OK:
        assert response.status_code == endpoint.ok, response.content[:500]
        if response.status_code == 302:
            assert not response["Location"].startswith("/login/")
        if endpoint.writes:
            assert after != before, "a successful write changed nothing"
        else:
            assert after == before
        return
    assert after == before, "a refused request changed the database or MEDIA_ROOT"
    if expected == LOGIN:
        if endpoint.api:
            assert response.status_code == 403
            if response["Content-Type"].startswith("application/json"):
                assert response.json() == {"detail": "Authentication credentials were not provided."}
        else:
            assert response.status_code == 302
            assert response["Location"].startswith("/login/?next=")
    else:
        assert response.status_code == int(expected), response.content[:500]


# ---------------------------------------------------------------- the tests
@pytest.mark.parametrize(("actor", "visibility", "expected"), per_visibility(READ))
@pytest.mark.parametrize("endpoint", PAGE_READS + API_READS, ids=str)
def test_reading_a_campaign_follows_the_read_matrix(endpoint, actor, visibility, expected, world):
    check(endpoint, world, actor, expected)


@pytest.mark.parametrize(("actor", "visibility", "expected"), per_visibility(WRITE))
@pytest.mark.parametrize("endpoint", PAGE_WRITES + API_WRITES, ids=str)
def test_changing_a_campaign_follows_the_write_matrix(endpoint, actor, visibility, expected, world):
    check(endpoint, world, actor, expected)


@pytest.mark.parametrize(("actor", "visibility", "expected"), per_visibility(CLONE))
@pytest.mark.parametrize("endpoint", CLONES, ids=str)
def test_cloning_a_campaign_follows_the_clone_matrix(endpoint, actor, visibility, expected, world):
    check(endpoint, world, actor, expected)


@pytest.mark.parametrize(("actor", "expected"), per_actor(CREATE))
@pytest.mark.parametrize("endpoint", CREATES, ids=str)
def test_creating_a_campaign_is_for_staff_only(endpoint, actor, expected, bare_world):
    check(endpoint, bare_world, actor, expected)
    if expected == OK and endpoint.writes:
        created = Campaign.objects.get()
        assert created.owner == bare_world.people[actor]


@pytest.mark.parametrize(("actor", "expected"), per_actor(GLOBAL))
@pytest.mark.parametrize("endpoint", GLOBALS, ids=str)
def test_pages_about_no_campaign_need_only_a_login(endpoint, actor, expected, bare_world):
    check(endpoint, bare_world, actor, expected)


@pytest.mark.parametrize("visibility", ["public"])
def test_a_science_user_write_is_refused_with_403_and_changes_nothing(world, science_user):
    client = Client()
    client.force_login(science_user)
    pk = world.campaign.pk
    api = world.api(science_user)
    before = db_state()
    for url, data in [
        (f"/campaigns/{pk}/status/", {"status": "ready"}),
        (f"/campaigns/{pk}/archive/", {"archived": "1"}),
        (f"/campaigns/{pk}/edit/", edit_form_data(world.campaign, reason="science edit")),
        ("/campaigns/new/", new_form_data()),
        ("/campaigns/import/", {"yaml": MINIMAL_YAML}),
    ]:
        assert client.post(url, data).status_code == 403, url
    assert api.patch(f"/api/v1/campaigns/{pk}/", {"version": 1, "reason": "x"}, format="json").status_code == 403
    assert api.post("/api/v1/campaigns/", definition(name="by-science"), format="json").status_code == 403
    assert db_state() == before


@pytest.mark.parametrize("visibility", ["private"])
def test_an_invisible_campaign_and_a_missing_one_look_the_same(world, other_staff):
    """404 for both, so a private campaign's existence never leaks."""
    api = world.api(other_staff)
    missing = world.campaign.pk + 1000
    for pk in (world.campaign.pk, missing):
        assert api.get(f"/api/v1/campaigns/{pk}/").status_code == 404
        assert api.post(f"/api/v1/campaigns/{pk}/status/", {"status": "ready"}, format="json").status_code == 404
    assert api.get(f"/api/v1/campaigns/{world.campaign.pk}/").json() == api.get(f"/api/v1/campaigns/{missing}/").json()


@pytest.mark.parametrize("visibility", ["public"])
def test_deleting_a_missing_attachment_is_a_404_not_a_server_error(world, owner):
    api = world.api(owner)
    assert api.delete(f"/api/v1/campaigns/{world.campaign.pk}/attachments/999999/").status_code == 404
    client = Client()
    client.force_login(owner)
    assert client.post(f"/campaigns/{world.campaign.pk}/attachments/999999/delete/").status_code == 404


@pytest.mark.parametrize("visibility", ["public"])
def test_an_attachment_of_another_campaign_is_not_reachable_through_this_one(world, owner, make_campaign):
    other = make_campaign(name="another-one")
    api = world.api(owner)
    url = f"/api/v1/campaigns/{other.pk}/attachments/{world.attachment.pk}/"
    assert api.get(url).status_code == 404
    before = db_state()
    assert api.delete(url).status_code == 404
    assert db_state() == before


def test_a_bad_token_is_refused_and_changes_nothing(api, campaign):
    client = api(None)
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    before = db_state()
    response = client.post(f"/api/v1/campaigns/{campaign.pk}/status/", {"status": "ready"}, format="json")
    assert response.status_code in (401, 403)
    assert response.json()["detail"] == "Invalid token."
    assert db_state() == before


# ---------------------------------------------------------------- list filtering
# Which of three campaigns (one per visibility; the private one shared as below) each actor sees in a list.
LIST_SEES = {
    "science": {"pub-campaign"},
    "outsider": {"pub-campaign"},
    "other_staff": {"pub-campaign", "staff-campaign"},
    "owner": {"pub-campaign", "staff-campaign", "private-campaign"},
    "collaborator": {"pub-campaign", "staff-campaign", "private-campaign"},
    "shared_change": {"pub-campaign", "staff-campaign", "private-campaign"},
    "shared_view": {"pub-campaign", "staff-campaign", "private-campaign"},
    "science_shared_change": {"pub-campaign", "private-campaign"},
    "admin": {"pub-campaign", "staff-campaign", "private-campaign"},
}


@pytest.fixture
def three_campaigns(people, demo_repo) -> dict[str, Campaign]:
    owner = people["owner"]
    made = {}
    for name, visibility in [("pub-campaign", "public"), ("staff-campaign", "staff"), ("private-campaign", "private")]:
        made[name] = services.campaign_create(
            user=owner,
            data=definition(
                name=name, visibility=visibility, collaborators=["erin"] if visibility == "private" else []
            ),
        )
    private = made["private-campaign"].pk
    services.campaign_share(user=owner, campaign_id=private, username="frank", permission="change")
    services.campaign_share(user=owner, campaign_id=private, username="grace", permission="view")
    services.campaign_share(user=owner, campaign_id=private, username="heidi", permission="change")
    return made


@pytest.mark.parametrize(("actor", "sees"), list(LIST_SEES.items()), ids=list(LIST_SEES))
def test_the_campaign_list_page_shows_only_what_the_user_may_see(actor, sees, people, three_campaigns):
    client = Client()
    client.force_login(people[actor])
    response = client.get("/campaigns/")
    assert response.status_code == 200
    assert {c.name for c in response.context["page"].object_list} == sees
    for hidden in set(three_campaigns) - sees:
        assert hidden not in response.content.decode()


@pytest.mark.parametrize(("actor", "sees"), list(LIST_SEES.items()), ids=list(LIST_SEES))
def test_the_campaign_list_api_shows_only_what_the_user_may_see(actor, sees, people, three_campaigns, api):
    response = api(people[actor]).get("/api/v1/campaigns/")
    assert response.status_code == 200
    assert {row["name"] for row in response.json()["results"]} == sees
    assert response.json()["count"] == len(sees)


@pytest.mark.parametrize(
    "query",
    ["visibility=private", "name=private-campaign", "q=private", "archived=all", "owner=alice&visibility=private"],
)
def test_list_filters_cannot_reveal_a_private_campaign(query, people, three_campaigns, api):
    client = Client()
    client.force_login(people["other_staff"])
    page = client.get(f"/campaigns/?{query}")
    assert "private-campaign" not in page.content.decode()
    rows = api(people["other_staff"]).get(f"/api/v1/campaigns/?{query}").json()["results"]
    assert "private-campaign" not in {row["name"] for row in rows}


# ---------------------------------------------------------------- CSRF
def test_a_page_post_without_a_csrf_token_is_refused(owner, campaign):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    before = db_state()
    response = client.post(f"/campaigns/{campaign.pk}/status/", {"status": "ready"})
    assert response.status_code == 403
    assert db_state() == before


def test_a_page_post_with_the_csrf_token_is_accepted(owner, campaign):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    client.get(f"/campaigns/{campaign.pk}/")
    token = client.cookies["csrftoken"].value
    response = client.post(f"/campaigns/{campaign.pk}/status/", {"status": "ready", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == "ready"


def test_an_api_write_with_a_session_but_no_csrf_token_is_refused(owner, campaign):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    before = db_state()
    response = client.post(
        f"/api/v1/campaigns/{campaign.pk}/status/", {"status": "ready"}, content_type="application/json"
    )
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert db_state() == before


def test_an_api_write_with_a_token_needs_no_csrf_token(owner, campaign, api):
    client = api(owner)
    client.handler.enforce_csrf_checks = True
    response = client.post(f"/api/v1/campaigns/{campaign.pk}/status/", {"status": "ready"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"


# ---------------------------------------------------------------- query counts
def _many_campaigns(make_campaign, owner, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        campaign = make_campaign(name=f"bulk-{i:03d}", visibility=["public", "staff", "private"][i % 3])
        services.step_groups_define(
            user=owner,
            campaign_id=campaign.pk,
            step_name="step1",
            groups=[{"name": "g1"}, {"name": "g2"}],
        )
        Group.objects.filter(step__campaign=campaign, name="g1").update(status=GroupStatus.SUCCEEDED)


def _count_queries(fetch) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = fetch()
        assert response.status_code == 200
    return len(ctx.captured_queries)


def test_the_campaign_list_api_needs_the_same_few_queries_for_3_or_30_campaigns(
    make_campaign, owner, other_staff, api, django_assert_max_num_queries
):
    client = api(other_staff)
    _many_campaigns(make_campaign, owner, 3)
    few = _count_queries(lambda: client.get("/api/v1/campaigns/"))
    _many_campaigns(make_campaign, owner, 27, start=3)
    with django_assert_max_num_queries(4):
        response = client.get("/api/v1/campaigns/")
    assert response.json()["count"] == 20  # the staff and public ones
    assert _count_queries(lambda: client.get("/api/v1/campaigns/")) == few
    row = next(r for r in response.json()["results"] if r["name"] == "bulk-000")
    assert (row["group_count"], row["groups_done"]) == (2, 1)


def test_the_campaign_list_page_needs_the_same_few_queries_for_3_or_30_campaigns(
    make_campaign, owner, other_staff, django_assert_max_num_queries
):
    client = Client()
    client.force_login(other_staff)
    _many_campaigns(make_campaign, owner, 3)
    few = _count_queries(lambda: client.get("/campaigns/"))
    _many_campaigns(make_campaign, owner, 27, start=3)
    with django_assert_max_num_queries(5):
        response = client.get("/campaigns/")
    assert len(response.context["page"].object_list) == 20
    assert _count_queries(lambda: client.get("/campaigns/")) == few
