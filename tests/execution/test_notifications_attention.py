"""Notifications of what needs a person beyond the first three events: a quality gate that failed, and a campaign
the executor paused. E-mail through Django's locmem backend, the web hook to a real local HTTP server; no BPS."""

from __future__ import annotations

import json
import threading
from http.server import ThreadingHTTPServer

import pytest

from campaigns.execution import campaign_launch, error_rule_create
from campaigns.models import Notification
from campaigns.services import step_groups_define
from campaigns.tasks import group_run, notify
from metrics import tasks as metric_tasks
from metrics.services import step_check_run
from tests.execution.attention import failed, run
from tests.execution.test_notifications import _Hook
from tests.metrics.conftest import GOOD, OTHER
from tests.metrics.test_gates import STEPS_WITH_GATE, _finish_step1

pytestmark = pytest.mark.django_db


@pytest.fixture
def hook(monkeypatch):
    """A real HTTP server on 127.0.0.1 in a thread (the handler of test_notifications.py): ``hook.received``."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    server.received = []  # type: ignore[attr-defined]
    server.status = 200  # type: ignore[attr-defined]
    server.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/cm"  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def no_bps_no_broker(monkeypatch, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.CM_BASE_URL = "https://cm.example.org"
    monkeypatch.setattr(group_run, "delay", lambda group_id: None)
    monkeypatch.setattr(notify, "delay", lambda notification_id: None)
    monkeypatch.setattr(metric_tasks.step_check_run, "delay", lambda pk: None)
    monkeypatch.setattr(metric_tasks.group_metrics_ingest, "delay", lambda pk: None)


def _deliver() -> list[str]:
    return [notify(n.pk) for n in Notification.objects.filter(state="pending").order_by("pk")]


def _gate_held(make_exec_campaign, owner, hook, events, capture):
    campaign = make_exec_campaign(
        steps=STEPS_WITH_GATE, notify={"emails": ["ops@example.org"], "webhook": hook.url, "events": events}
    )
    step1 = campaign.steps.get(name="step1")
    step_groups_define(
        user=owner,
        campaign_id=campaign.pk,
        step_name="step1",
        groups=[{"name": "n1", "data_query": "day_obs = 20251121"}],
    )
    campaign = campaign_launch(user=owner, campaign_id=campaign.pk)
    _finish_step1(campaign, owner, {GOOD: [1.3, 1.25], OTHER: [1.2, 1.4]}, capture)
    step_check_run(step_id=step1.pk)
    step2 = campaign.steps.get(name="step2")
    assert step2.status == "awaiting_approval" and step2.hold_kind == "quality_gate"
    return campaign, step2


def test_a_failing_quality_gate_is_sent_as_its_own_event(
    make_exec_campaign,
    owner,
    hook,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    campaign, step2 = _gate_held(
        make_exec_campaign,
        owner,
        hook,
        ["quality_gate_failed", "step_awaiting_approval"],
        django_capture_on_commit_callbacks,
    )
    rows = Notification.objects.filter(campaign=campaign)
    # One message for the hold, not two: the gate event replaces the generic one.
    assert sorted({n.event for n in rows}) == ["quality_gate_failed"]
    assert _deliver() == ["sent", "sent"]
    (mail,) = mailoutbox
    assert mail.subject == f"[{campaign.name}] quality gate failed: step step2 awaits approval"
    assert "psf_fwhm median < 1.1" in mail.body and "measured 1.275" in mail.body
    assert f"https://cm.example.org/campaigns/{campaign.pk}/" in mail.body
    (post,) = hook.received
    assert "quality gate failed" in json.loads(post["body"])["text"]
    assert step2.hold_reason.startswith("quality gate of step step1 failed")


def test_a_gate_hold_still_reaches_those_who_only_asked_for_approvals(
    make_exec_campaign,
    owner,
    hook,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    campaign, _ = _gate_held(
        make_exec_campaign, owner, hook, ["step_awaiting_approval"], django_capture_on_commit_callbacks
    )
    (row,) = Notification.objects.filter(campaign=campaign, channel="email")
    assert row.event == "step_awaiting_approval" and "(a quality gate failed)" in row.subject
    assert "psf_fwhm median < 1.1" in row.body


def test_a_pause_by_an_error_rule_is_sent_by_email_and_web_hook(
    make_exec_campaign,
    owner,
    hook,
    mailoutbox,
):
    rule = error_rule_create(user=owner, message_regex="calibration .* missing", action="pause", comment="no flats")
    campaign = make_exec_campaign(
        steps=[{"name": "step1", "pipeline_subset": "step1"}],
        notify={"emails": ["ops@example.org"], "webhook": hook.url, "events": ["campaign_paused"]},
    )
    campaign_launch(user=owner, campaign_id=campaign.pk)
    group = campaign.steps.get().groups.order_by("position").first()
    run(group, failed(message="the flat calibration for detector 1 is missing", exc="KeyError"))
    assert sorted(Notification.objects.filter(campaign=campaign).values_list("event", "channel")) == [
        ("campaign_paused", "email"),
        ("campaign_paused", "webhook"),
    ]
    assert _deliver() == ["sent", "sent"]
    (mail,) = mailoutbox
    assert mail.subject == f"[{campaign.name}] campaign paused by the executor"
    assert f"error rule #{rule.pk}" in mail.body and "step1/night-20251121" in mail.body
    assert "until a staff member resumes it" in mail.body
    payload = json.loads(hook.received[0]["body"])
    assert "paused by the executor" in payload["text"]


def test_a_pause_by_a_person_sends_nothing(make_exec_campaign, owner, hook, mailoutbox):
    from campaigns.execution import campaign_pause

    campaign = make_exec_campaign(
        steps=[{"name": "step1", "pipeline_subset": "step1"}],
        notify={"emails": ["ops@example.org"], "events": ["campaign_paused"]},
    )
    campaign_launch(user=owner, campaign_id=campaign.pk)
    campaign_pause(user=owner, campaign_id=campaign.pk, comment="lunch")
    assert not Notification.objects.filter(campaign=campaign).exists()
