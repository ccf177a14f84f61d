"""Liveness answers without touching anything; readiness checks the database, the broker and every Butler repo."""

from __future__ import annotations

import pytest

from core.health import Broker, broker_location
from tagging import health as tagging_health
from tagging.services import butler_repo_upsert

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_repo_answers():
    tagging_health._recent.clear()
    yield
    tagging_health._recent.clear()


def test_liveness_answers_without_a_login_and_without_the_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert "no-cache" in response["Cache-Control"]


def test_readiness_passes_with_the_database_the_broker_and_a_real_butler_repo(client, butler_repo):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body.values()) == {"OK"}
    assert any(key.startswith("Database") for key in body)
    assert any(key.startswith("Broker") for key in body)
    assert any(key.startswith("ButlerRepos") for key in body)


def test_readiness_fails_naming_the_repo_but_not_its_location_when_a_repo_cannot_be_opened(
    client, butler_repo, tmp_path
):
    butler_repo_upsert(label="gone", config_uri=str(tmp_path / "no-such-repo"), default_instrument="DemoCam")
    response = client.get("/readyz")
    assert response.status_code == 503
    text = response.content.decode()
    assert "gone: not reachable" in text
    assert str(tmp_path) not in text
    assert "Traceback" not in text


def test_readiness_fails_when_the_broker_cannot_be_reached_and_does_not_show_its_password(client, settings):
    settings.CELERY_BROKER_URL = "redis://:s3cret-password@127.0.0.1:9/0"  # nothing listens on port 9
    response = client.get("/readyz")
    assert response.status_code == 503
    text = response.content.decode()
    assert "cannot reach the broker at redis (127.0.0.1:9)" in text
    assert "s3cret" not in text


def test_readiness_reuses_a_recent_answer_about_a_repo(butler_repo, monkeypatch):
    calls = []
    import lsst_adapter.registry

    monkeypatch.setattr(lsst_adapter.registry, "ping", lambda uri: calls.append(uri))
    tagging_health.ButlerRepos().run()
    tagging_health.ButlerRepos().run()
    assert calls == [butler_repo.config_uri]


def test_broker_location_names_the_scheme_and_place_only():
    assert broker_location("redis://user:pw@redis.example.org:6380/2") == "redis (redis.example.org:6380)"
    assert broker_location("sqla+sqlite:////var/cm/broker.sqlite3") == "SQLAlchemy transport (no server)"
    assert broker_location("memory://") == "in-process memory"


def test_the_broker_check_is_a_dataclass_with_no_secret_in_its_repr():
    assert "password" not in repr(Broker()).lower()
