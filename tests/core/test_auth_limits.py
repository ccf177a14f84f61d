"""Log-in limits and tokens: repeated failures on the token endpoint, the login page and the admin log-in
get 429 with Retry-After (per username and per client address, counted in a cache the web processes
share); tokens expire after CM_TOKEN_MAX_AGE and are revoked by their owner (page, API) or an admin."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from types import SimpleNamespace

import pytest
import redis
from django.core.cache import caches
from django.core.management import call_command
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from config.env import parse_duration
from core.auth import record_failure, retry_after
from tests.conftest import PASSWORD
from tests.helpers import ROOT

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token/"


@pytest.fixture(autouse=True)
def limits(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast: many log-ins here
    settings.CM_AUTH_MAX_FAILURES_PER_USER = 5
    settings.CM_AUTH_MAX_FAILURES_PER_ADDRESS = 20
    settings.CM_AUTH_FAILURE_WINDOW_SECONDS = 900
    settings.CM_NUM_PROXIES = 0
    settings.CM_TOKEN_MAX_AGE = None
    return settings


def token_post(username: str, password: str, address: str = "10.0.0.1", **headers):
    return APIClient(REMOTE_ADDR=address, **headers).post(
        TOKEN_URL, {"username": username, "password": password}, format="json"
    )


def test_the_token_endpoint_answers_429_with_retry_after_after_repeated_failures(owner):
    for _ in range(5):
        assert token_post("alice", "wrong").status_code == 400
    locked = token_post("alice", PASSWORD)  # even the right password: it is not even checked now
    assert locked.status_code == 429
    wait = int(locked["Retry-After"])
    assert 0 < wait <= 900
    assert "Too many failed log-ins" in locked.json()["detail"]
    assert "token" not in locked.json()
    assert token_post("bob-not-locked", "wrong", address="10.0.0.2").status_code == 400  # others go on


def test_a_successful_log_in_clears_the_count_of_its_username(owner):
    for _ in range(4):
        token_post("alice", "wrong")
    ok = token_post("alice", PASSWORD)
    assert ok.status_code == 200 and ok.json()["token"] == Token.objects.get(user=owner).key
    for _ in range(4):
        assert token_post("alice", "wrong").status_code == 400  # a fresh count of 5


def test_failures_from_one_address_are_limited_whatever_the_usernames(owner):
    for i in range(20):
        assert token_post(f"guess{i}", "wrong").status_code == 400
    refused = token_post("alice", PASSWORD)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert token_post("alice", PASSWORD, address="10.9.9.9").status_code == 200  # another client is not


def test_a_client_cannot_escape_the_address_limit_with_x_forwarded_for(owner, limits):
    for i in range(20):
        token_post(f"guess{i}", "wrong", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}")
    assert token_post("alice", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 429


def test_behind_a_proxy_the_address_it_saw_is_the_client(owner, limits):
    limits.CM_NUM_PROXIES = 1
    proxy = "10.0.0.254"
    for i in range(20):  # the client writes what it likes first; the proxy appends the address it saw
        token_post(f"guess{i}", "wrong", address=proxy, HTTP_X_FORWARDED_FOR=f"1.2.3.{i}, 203.0.113.5")
    assert token_post("alice", PASSWORD, address=proxy, HTTP_X_FORWARDED_FOR="203.0.113.5").status_code == 429
    assert token_post("alice", PASSWORD, address=proxy, HTTP_X_FORWARDED_FOR="203.0.113.6").status_code == 200


def test_the_login_page_refuses_with_429_and_says_when_to_try_again(client, owner):
    for _ in range(5):
        response = client.post("/login/", {"username": "alice", "password": "wrong"})
        assert response.status_code == 200 and "didn't match" in response.content.decode()
    locked = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert locked.status_code == 429
    assert 0 < int(locked["Retry-After"]) <= 900
    page = locked.content.decode()
    assert "Too many failed log-ins. Try again in 15 minutes." in page
    assert 'value="alice"' in page  # the form is shown again, ready for later
    assert "_auth_user_id" not in client.session  # not logged in, although the password was right


def test_the_admin_log_in_is_limited_too(client, admin, other_staff):
    # Anonymous visitors are sent to the login page; a logged-in user can still reach the admin's form.
    assert client.get("/admin/login/")["Location"].startswith("/login/")
    client.force_login(other_staff)
    for _ in range(5):
        assert client.post("/admin/login/", {"username": "admin", "password": "wrong"}).status_code == 200
    locked = client.post("/admin/login/", {"username": "admin", "password": PASSWORD})
    assert locked.status_code == 429 and int(locked["Retry-After"]) > 0
    assert client.session["_auth_user_id"] == str(other_staff.pk)  # still bob, not admin


def test_a_token_post_counts_on_the_login_page_and_back(client, owner):
    for _ in range(3):
        token_post("alice", "wrong", address="127.0.0.1")
    for _ in range(2):
        client.post("/login/", {"username": "alice", "password": "wrong"})
    assert token_post("alice", PASSWORD, address="10.1.1.1").status_code == 429  # one count per username


def test_failures_counted_in_another_process_are_seen_here(owner, settings):
    """The web processes share the count: files under var/ by default (one host), Redis with CM_CACHE_URL."""
    code = (
        "from types import SimpleNamespace as N; from core.auth import record_failure\n"
        "for _ in range(5): record_failure(N(META={'REMOTE_ADDR': '10.3.3.3'}), 'alice')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(SECRET_KEY="x", CM_VAR_DIR=str(settings.VAR_DIR), DJANGO_SETTINGS_MODULE="config.settings")
    subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, check=True, timeout=120)
    assert token_post("alice", PASSWORD, address="10.4.4.4").status_code == 429


def test_with_cm_cache_url_the_count_lives_in_redis(owner, settings):
    url = os.environ.get("CM_TEST_REDIS_URL") or "redis://127.0.0.1:6379/15"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError:
        pytest.skip("no Redis to share the count through")
    settings.CACHES = {
        **settings.CACHES,
        "auth": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "cm-test-auth",
        },
    }
    caches["auth"].clear()
    try:
        request = SimpleNamespace(META={"REMOTE_ADDR": "10.5.5.5"})
        for _ in range(5):
            record_failure(request, "alice")
        seen = redis.Redis.from_url(url).keys("cm-test-auth:*login-fail:user:*")
        assert seen  # the count is in Redis, where every web process reads it
        assert retry_after(SimpleNamespace(META={"REMOTE_ADDR": "10.6.6.6"}), "alice") is not None
        assert token_post("alice", PASSWORD, address="10.6.6.6").status_code == 429
    finally:
        caches["auth"].clear()


# --- tokens ----------------------------------------------------------------------------------------


def refused_detail(key: str) -> str:
    """The API's answer to a request with token ``key`` that must be refused (403, as for any bad credential:
    the session authenticator comes first, so DRF answers 403 rather than 401)."""
    response = APIClient(HTTP_AUTHORIZATION=f"Token {key}").get("/api/v1/campaigns/")
    assert response.status_code == 403
    return response.json()["detail"]


def _age(token: Token, hours: int) -> None:
    Token.objects.filter(pk=token.pk).update(created=timezone.now() - timedelta(hours=hours))


def test_an_expired_token_is_refused_and_logging_in_again_gives_a_new_one(owner, api, limits):
    limits.CM_TOKEN_MAX_AGE = 3600
    old = Token.objects.create(user=owner)
    assert api(owner).get("/api/v1/campaigns/").status_code == 200
    _age(old, 2)
    assert refused_detail(old.key) == "This token has expired. Create a new one on your token page, or with `cm login`."
    fresh = token_post("alice", PASSWORD)
    assert fresh.status_code == 200
    new_key = fresh.json()["token"]
    assert new_key != old.key and fresh.json()["expires"]
    assert APIClient(HTTP_AUTHORIZATION=f"Token {new_key}").get("/api/v1/campaigns/").status_code == 200


def test_tokens_do_not_expire_when_the_setting_is_off(owner, limits):
    token = Token.objects.create(user=owner)
    _age(token, 24 * 365 * 5)
    assert APIClient(HTTP_AUTHORIZATION=f"Token {token.key}").get("/api/v1/campaigns/").status_code == 200
    assert token_post("alice", PASSWORD).json() == {"token": token.key, "expires": None}


def test_create_token_replaces_an_expired_token(owner, limits, capsys):
    limits.CM_TOKEN_MAX_AGE = 3600
    old = Token.objects.create(user=owner)
    call_command("create_token", "alice")
    assert capsys.readouterr().out.strip() == old.key
    _age(old, 2)
    call_command("create_token", "alice")
    assert capsys.readouterr().out.strip() == Token.objects.get(user=owner).key != old.key


def test_the_token_page_says_when_the_token_expires_and_when_it_has(client, owner, limits):
    limits.CM_TOKEN_MAX_AGE = 3600
    client.force_login(owner)
    created = client.post("/account/token/")
    assert "valid until" in created.content.decode()
    _age(Token.objects.get(user=owner), 2)
    assert "expired on" in client.get("/account/token/").content.decode()


def test_the_owner_revokes_their_token_on_the_token_page(client, owner):
    token = Token.objects.create(user=owner)
    client.force_login(owner)
    assert 'id="revoke-token"' in client.get("/account/token/").content.decode()
    response = client.post("/account/token/", {"action": "revoke"}, follow=True)
    assert "Your API token was revoked" in response.content.decode()
    assert not Token.objects.filter(user=owner).exists()
    assert refused_detail(token.key) == "Invalid token."


def test_the_owner_revokes_their_token_through_the_api(owner, other_staff):
    token = Token.objects.create(user=owner)
    theirs = Token.objects.create(user=other_staff)
    client = APIClient(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.delete(TOKEN_URL).status_code == 204
    assert refused_detail(token.key) == "Invalid token."
    assert Token.objects.filter(pk=theirs.pk).exists()  # only one's own
    assert APIClient().delete(TOKEN_URL).status_code == 403


def test_an_administrator_revokes_anyones_token_in_the_admin(client, admin, owner):
    token = Token.objects.create(user=owner)
    client.force_login(admin)
    listing = client.get("/admin/authtoken/tokenproxy/").content.decode()
    assert "alice" in listing and token.key not in listing  # the key is never shown in full
    response = client.post(f"/admin/authtoken/tokenproxy/{owner.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Token.objects.filter(user=owner).exists()
    assert refused_detail(token.key) == "Invalid token."


def test_staff_who_are_not_administrators_cannot_reach_the_token_admin(client, owner):
    client.force_login(owner)
    assert client.get("/admin/authtoken/tokenproxy/").status_code == 302  # to the admin's log-in


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("3600", 3600), ("90m", 5400), ("12h", 43200), ("30d", 2592000), ("2w", 1209600), ("off", None), ("0", None)],
)
def test_token_max_age_reads_seconds_or_a_unit(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["-5", "12x", "h", "1.5h", "forever"])
def test_a_token_max_age_that_is_not_a_duration_is_an_error(text):
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)
