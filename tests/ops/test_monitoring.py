"""/metrics: django-prometheus's counters and our gauges (groups by state, ready-group age, heartbeats, quanta, queues)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.choices import GroupStatus
from campaigns.models import Group, WorkerHeartbeat
from campaigns.services import worker_heartbeat_record

pytestmark = pytest.mark.django_db


def _value(text: str, name: str, labels: str = "") -> float:
    pattern = rf"^{re.escape(name)}{re.escape(labels)} (\S+)$"
    match = re.search(pattern, text, re.MULTILINE)
    assert match, f"{name}{labels} is not in the scrape"
    return float(match.group(1))


def test_metrics_show_groups_by_state_the_oldest_ready_group_and_worker_heartbeats(client, make_campaign, owner):
    from campaigns import services

    campaign = make_campaign()
    groups = services.step_groups_define(
        user=owner, campaign_id=campaign.pk, step_name="step1", groups=[{"name": "a"}, {"name": "b"}, {"name": "c"}]
    )
    services.group_set_status(user=owner, group_id=groups[0].pk, status=GroupStatus.READY)
    Group.objects.filter(pk=groups[0].pk).update(updated=timezone.now() - timedelta(minutes=5))
    worker_heartbeat_record(hostname="worker1@host")
    WorkerHeartbeat.objects.filter(hostname="worker1@host").update(seen=timezone.now() - timedelta(seconds=90))

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert _value(text, "cm_groups", '{state="ready"}') == 1
    assert _value(text, "cm_groups", '{state="waiting"}') == 2
    assert _value(text, "cm_groups", '{state="running"}') == 0
    assert 299 <= _value(text, "cm_oldest_ready_group_age_seconds") < 400
    assert 89 <= _value(text, "cm_worker_heartbeat_age_seconds", '{worker="worker1@host"}') < 200
    assert 89 <= _value(text, "cm_last_worker_heartbeat_age_seconds") < 200
    assert _value(text, "cm_quanta_succeeded") == 0
    assert _value(text, "cm_quanta_done_per_minute") == 0
    assert _value(text, "cm_celery_queue_length", '{queue="celery"}') >= 0
    assert (
        "django_http_requests_total_by_method_total" in text or "django_http_requests_before_middlewares_total" in text
    )


def test_metrics_ask_for_the_bearer_token_when_one_is_configured(client, settings):
    settings.CM_METRICS_TOKEN = "scrape-token-123"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-123").status_code == 200


def test_a_scrape_still_answers_when_the_broker_is_down(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:9/0"  # nothing listens on port 9
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert "cm_groups" in text
    assert "cm_celery_queue_length{" not in text
