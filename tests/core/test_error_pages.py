"""With DEBUG off, errors under /api/ are JSON and pages get the site's own error pages; no traceback, exception
text or filesystem path reaches a client, whatever the view raised."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from campaigns import selectors as campaign_selectors

SECRET = "/srv/secret/campaigns/settings_local.py"  # what an exception might carry: a path on the server


@pytest.fixture
def exploding_list(monkeypatch):
    """The campaign list's selector fails the way a bug would: with a message naming a file on the server."""

    def explode(*args, **kwargs):
        raise RuntimeError(f"cannot read {SECRET}")

    monkeypatch.setattr(campaign_selectors, "campaign_list", explode)


def _client(user) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def _assert_nothing_leaks(body: bytes) -> None:
    text = body.decode()
    for leak in ("Traceback", SECRET, "RuntimeError", "/work/", "site-packages", ".py"):
        assert leak not in text, f"{leak!r} reached the client:\n{text[:500]}"


def test_an_exception_in_an_api_view_is_a_json_500_without_traceback_or_path(settings, owner, exploding_list):
    assert settings.DEBUG is False
    response = _client(owner).get("/api/v1/campaigns/")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert "server error" in json.loads(response.content)["detail"]
    _assert_nothing_leaks(response.content)


def test_an_exception_in_a_page_is_the_sites_500_page_without_traceback_or_path(settings, owner, exploding_list):
    response = _client(owner).get("/campaigns/")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")
    assert b"Something went wrong on our side" in response.content
    _assert_nothing_leaks(response.content)


def test_a_url_under_the_api_that_matches_nothing_is_a_json_404(owner):
    for url in ("/api/v1/campaigns/abc/restore/", "/api/v1/campaigns/99999999999999999999999/", "/api/v1/nothing/"):
        response = _client(owner).post(url)
        assert response.status_code == 404, url
        assert json.loads(response.content) == {"detail": "Not found."}


def test_a_page_that_matches_nothing_is_the_sites_404_page(owner):
    response = _client(owner).get("/campaigns/99999999999999999999999/")
    assert response.status_code == 404
    assert b"Page not found" in response.content and b'class="topbar"' in response.content


def test_a_request_for_a_host_the_site_does_not_serve_is_the_sites_400_page_or_json(owner):
    page = _client(owner).get("/campaigns/", HTTP_HOST="evil.example")
    assert page.status_code == 400
    assert b"This request could not be understood" in page.content
    api = _client(owner).get("/api/v1/campaigns/", HTTP_HOST="evil.example")
    assert api.status_code == 400
    assert json.loads(api.content) == {"detail": "Bad request."}


def test_a_page_a_science_user_may_not_open_is_the_sites_403_page(science_user):
    response = _client(science_user).get("/campaigns/new/")
    assert response.status_code == 403
    assert b"You may not do this" in response.content and b'class="topbar"' in response.content
