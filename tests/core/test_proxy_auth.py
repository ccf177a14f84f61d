"""Login from a trusted authenticating proxy (``core.proxy_auth``).

The middleware and backend are only installed when ``CM_TRUSTED_PROXY_AUTH`` is
set when the settings are imported, so these tests install them with
``override_settings`` (the feature on) and check that without them the header is
ignored (the feature off, the default).
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client, override_settings

from core.roles import is_staff_member, role_of, set_role

PROXY_MIDDLEWARE = "core.proxy_auth.TrustedProxyUserMiddleware"
PROXY_BACKEND = "core.proxy_auth.TrustedProxyUserBackend"
GROUP_MAP = {"g_dm_staff": "staff", "g_science": "science"}


def _with_proxy_middleware() -> list[str]:
    middleware = [m for m in settings.MIDDLEWARE if m != PROXY_MIDDLEWARE]
    index = middleware.index("django.contrib.auth.middleware.AuthenticationMiddleware")
    return [*middleware[: index + 1], PROXY_MIDDLEWARE, *middleware[index + 1 :]]


@pytest.fixture
def proxy_on():
    with override_settings(
        MIDDLEWARE=_with_proxy_middleware(),
        AUTHENTICATION_BACKENDS=[*(b for b in settings.AUTHENTICATION_BACKENDS if b != PROXY_BACKEND), PROXY_BACKEND],
        TRUSTED_PROXY_GROUP_MAP=GROUP_MAP,
    ):
        yield


@pytest.fixture
def proxy_off():
    with override_settings(
        MIDDLEWARE=[m for m in settings.MIDDLEWARE if m != PROXY_MIDDLEWARE],
        AUTHENTICATION_BACKENDS=[b for b in settings.AUTHENTICATION_BACKENDS if b != PROXY_BACKEND],
        TRUSTED_PROXY_GROUP_MAP=GROUP_MAP,
    ):
        yield


def _get(client: Client, path: str = "/campaigns/", user: str | None = None, groups: str | None = None):
    headers = {}
    if user is not None:
        headers["X-Auth-Request-User"] = user
    if groups is not None:
        headers["X-Auth-Request-Groups"] = groups
    return client.get(path, headers=headers)


def _user(username: str):
    return get_user_model().objects.get(username=username)


@pytest.mark.django_db
def test_the_feature_is_off_by_default():
    assert PROXY_MIDDLEWARE not in settings.MIDDLEWARE
    assert PROXY_BACKEND not in settings.AUTHENTICATION_BACKENDS


@pytest.mark.django_db
def test_a_proxy_header_logs_in_and_creates_the_user(proxy_on):
    client = Client()
    response = _get(client, user="zoe", groups="g_dm_staff")
    assert response.status_code == 200
    zoe = _user("zoe")
    assert response.wsgi_request.user == zoe
    assert not Client().login(username="zoe", password="")  # no password login for a proxy-made user
    # The login is kept in the session for the next request from the proxy.
    assert int(client.session["_auth_user_id"]) == zoe.pk


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("groups", "role"),
    [
        ("g_dm_staff", "staff"),
        ("g_science", "science"),
        ("g_science, g_dm_staff", "staff"),
        (" g_other ,g_science ", "science"),
        ("g_other", "viewer"),
        ("", "viewer"),
        (None, "viewer"),
    ],
)
def test_proxy_groups_map_to_roles(proxy_on, groups, role):
    response = _get(Client(), user="zoe", groups=groups)
    assert response.status_code == 200
    zoe = _user("zoe")
    assert role_of(zoe) == role
    assert is_staff_member(zoe) is (role == "staff")


@pytest.mark.django_db
def test_an_existing_user_gets_the_role_the_proxy_says_at_login(proxy_on):
    erin = get_user_model().objects.create_user("erin")
    set_role(erin, "science")
    _get(Client(), user="erin", groups="g_dm_staff")
    erin.refresh_from_db()
    assert role_of(erin) == "staff"
    assert get_user_model().objects.filter(username="erin").count() == 1


@pytest.mark.django_db
def test_a_proxy_staff_user_may_create_and_a_proxy_science_user_may_not(proxy_on):
    assert _get(Client(), "/campaigns/new/", user="zoe", groups="g_dm_staff").status_code == 200
    assert _get(Client(), "/campaigns/new/", user="yan", groups="g_science").status_code == 403


@pytest.mark.django_db
def test_the_proxy_login_also_authenticates_the_api(proxy_on):
    response = _get(Client(), "/api/v1/campaigns/", user="zoe", groups="g_science")
    assert response.status_code == 200
    assert response.json()["count"] == 0


@pytest.mark.django_db
def test_a_request_without_the_header_logs_the_proxy_user_out(proxy_on):
    client = Client()
    assert _get(client, user="zoe", groups="g_dm_staff").status_code == 200
    response = _get(client)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_another_user_in_the_header_replaces_the_session_user(proxy_on):
    client = Client()
    _get(client, user="zoe", groups="g_dm_staff")
    response = _get(client, user="yan", groups="g_science")
    assert response.status_code == 200
    assert response.wsgi_request.user.username == "yan"
    assert int(client.session["_auth_user_id"]) == _user("yan").pk


@pytest.mark.django_db
def test_an_empty_header_logs_nobody_in(proxy_on):
    response = _get(Client(), user="", groups="g_dm_staff")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert not get_user_model().objects.exists()


@pytest.mark.django_db
def test_an_inactive_user_cannot_log_in_through_the_proxy(proxy_on):
    get_user_model().objects.create_user("zoe", is_active=False)
    response = _get(Client(), user="zoe", groups="g_dm_staff")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert role_of(_user("zoe")) == "viewer"


@pytest.mark.django_db
def test_a_password_login_still_works_when_the_proxy_feature_is_on(proxy_on):
    user = get_user_model().objects.create_user("pat")
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    assert _get(client).status_code == 200


@pytest.mark.django_db
def test_without_the_feature_the_header_is_ignored(proxy_off):
    response = _get(Client(), user="zoe", groups="g_dm_staff")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/campaigns/"
    assert not get_user_model().objects.filter(username="zoe").exists()


@pytest.mark.django_db
def test_without_the_feature_the_api_ignores_the_header(proxy_off):
    response = _get(Client(), "/api/v1/campaigns/", user="zoe", groups="g_dm_staff")
    assert response.status_code == 403
    assert response.json() == {"detail": "Authentication credentials were not provided."}
    assert not get_user_model().objects.filter(username="zoe").exists()


@pytest.mark.django_db
def test_a_user_the_proxy_no_longer_puts_in_a_mapped_group_loses_the_role(proxy_on):
    frank = get_user_model().objects.create_user("frank")
    set_role(frank, "staff")
    _get(Client(), user="frank", groups="g_other")
    assert role_of(_user("frank")) == "viewer"


@pytest.mark.django_db
def test_without_the_groups_header_the_role_is_left_as_it_is(proxy_on):
    gina = get_user_model().objects.create_user("gina")
    set_role(gina, "staff")
    _get(Client(), user="gina")
    assert role_of(_user("gina")) == "staff"


@pytest.mark.django_db
def test_a_role_change_at_the_proxy_applies_within_the_same_session(proxy_on):
    client = Client()
    assert _get(client, "/campaigns/new/", user="hank", groups="g_dm_staff").status_code == 200
    # Same session, same user: Django does not log in again, but the groups are read on every request.
    assert _get(client, "/campaigns/new/", user="hank", groups="g_science").status_code == 403
    assert role_of(_user("hank")) == "science"
