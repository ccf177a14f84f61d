"""Notifications of campaign events: e-mail (Django's locmem backend) and a web hook (a real local HTTP server).

No BPS runs: results are recorded with the adapter's plain dataclasses, as in test_state_machine.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError

from campaigns import services
from campaigns.choices import CampaignStatus, StepStatus
from campaigns.execution import campaign_launch, group_accept, step_approve
from campaigns.execution.runner import submission_claim, submission_record_prepared, submission_record_result
from campaigns.models import Group, Notification, Submission
from campaigns.tasks import group_run, notify
from campaigns.yaml_io import campaign_to_yaml, parse_campaign_yaml
from lsst_adapter.bps import FailedQuantum, GroupProgress, PreparedWorkflow
from tests.conftest import definition

pytestmark = pytest.mark.django_db

ALL_EVENTS = [
    "group_failed",
    "step_awaiting_approval",
    "campaign_finished",
    "quality_gate_failed",
    "campaign_paused",
]


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        server = self.server
        server.received.append({"path": self.path, "type": self.headers.get("Content-Type"), "body": body})  # type: ignore[attr-defined]
        status = server.status  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok" if status < 300 else b"hook exploded")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def hook(monkeypatch):
    """A real HTTP server on 127.0.0.1 in a thread; ``hook.received`` lists the POSTs, ``hook.status`` the answer."""
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
    sent: list[int] = []
    monkeypatch.setattr(notify, "delay", lambda notification_id: sent.append(notification_id))
    return sent


def _prepared(sub: Submission) -> PreparedWorkflow:
    return PreparedWorkflow(
        run_name=sub.run_collection.replace("/", "_"),
        submit_dir=sub.submit_dir,
        qgraph_file=f"{sub.submit_dir}/g.qg",
        quanta=4,
        quanta_by_task={"step1": 4},
        jobs=6,
        wms_service_class="lsst.ctrl.bps.parsl.ParslService",
        butler_config="repo",
        output=sub.output_collection,
        output_run=sub.run_collection,
        prepare_seconds=0.1,
    )


def _ok() -> GroupProgress:
    return GroupProgress(total=4, succeeded=4, state="SUCCEEDED", finished=True)


def _failed() -> GroupProgress:
    failure = FailedQuantum(
        "step1", {"instrument": "DemoCam", "exposure": 2025112100151, "detector": 1}, "InjectedFailure", "PSF blew up"
    )
    return GroupProgress(total=4, succeeded=3, failed=1, state="FAILED", finished=True, failures=[failure])


def _run(group: Group, progress: GroupProgress) -> None:
    sub = submission_claim(group_id=group.pk, task_id="t1", worker_name="w@h")
    assert sub is not None
    assert submission_record_prepared(submission_id=sub.pk, prepared=_prepared(sub))
    submission_record_result(submission_id=sub.pk, progress=progress)


def _deliver_pending() -> list[str]:
    """What the worker does with the queued ``notify`` tasks (called as functions, in this process)."""
    return [notify(n.pk) for n in Notification.objects.filter(state="pending").order_by("pk")]


def _launched(make_exec_campaign, owner, hook, events=None):
    notify_config = {"emails": ["ops@example.org", "alice@example.org"], "webhook": hook.url}
    if events is not None:
        notify_config["events"] = events
    campaign = make_exec_campaign(notify=notify_config)
    campaign_launch(user=owner, campaign_id=campaign.pk)
    step1, step2 = campaign.steps.order_by("position")
    g1, g2 = step1.groups.order_by("position")
    return campaign, step1, step2, g1, g2


def test_a_failed_group_sends_an_email_and_a_webhook_naming_campaign_group_and_error(
    make_exec_campaign, owner, hook, mailoutbox, django_capture_on_commit_callbacks, no_bps_no_broker
):
    campaign, _step1, _step2, g1, _g2 = _launched(make_exec_campaign, owner, hook)
    with django_capture_on_commit_callbacks(execute=True):
        _run(g1, _failed())
    rows = list(Notification.objects.filter(campaign=campaign, event="group_failed").order_by("pk"))
    assert [(n.channel, n.target) for n in rows] == [
        ("email", "ops@example.org"),
        ("email", "alice@example.org"),
        ("webhook", hook.url),
    ]
    assert no_bps_no_broker == [n.pk for n in rows]  # enqueued once the transaction committed
    assert _deliver_pending() == ["sent", "sent", "sent"]

    assert sorted(m.to[0] for m in mailoutbox) == ["alice@example.org", "ops@example.org"]
    mail = mailoutbox[0]
    assert campaign.name in mail.subject and "step1/night-20251121" in mail.subject
    assert "PSF blew up" in mail.body and "InjectedFailure" in mail.body
    assert f"https://cm.example.org/campaigns/{campaign.pk}/groups/{g1.pk}/" in mail.body
    assert mail.from_email == "campaign-manager@localhost"

    (post,) = hook.received
    assert post["path"] == "/hooks/cm" and post["type"] == "application/json"
    payload = json.loads(post["body"])
    assert campaign.name in payload["text"] and "night-20251121" in payload["text"]
    assert "PSF blew up" in payload["text"] and payload["blocks"][0]["type"] == "header"
    for row in Notification.objects.filter(campaign=campaign):
        assert row.state == "sent" and row.attempts == 1 and row.sent is not None and row.error == ""


def test_running_the_task_twice_sends_once(make_exec_campaign, owner, hook, mailoutbox):
    campaign = make_exec_campaign(notify={"emails": ["ops@example.org"], "webhook": hook.url})
    campaign_launch(user=owner, campaign_id=campaign.pk)
    g1 = Group.objects.filter(step__campaign=campaign).order_by("step__position", "position").first()
    _run(g1, _failed())
    rows = list(Notification.objects.filter(campaign=campaign))
    assert len(rows) == 2
    for row in rows:
        assert notify(row.pk) == "sent"
        assert notify(row.pk) == "not claimed"
    assert len(mailoutbox) == 1 and len(hook.received) == 1
    assert {r.attempts for r in Notification.objects.filter(campaign=campaign)} == {1}


def test_step_awaiting_approval_and_campaign_finished_are_notified(make_exec_campaign, owner, hook, mailoutbox):
    campaign, _step1, step2, g1, g2 = _launched(make_exec_campaign, owner, hook)
    _run(g1, _ok())
    _run(g2, _ok())
    step2.refresh_from_db()
    assert step2.status == StepStatus.AWAITING_APPROVAL
    (awaiting,) = Notification.objects.filter(event="step_awaiting_approval", channel="webhook")
    assert "step2" in awaiting.subject and "awaits approval" in awaiting.subject and campaign.name in awaiting.subject

    step_approve(user=owner, step_id=step2.pk, comment="QA fine")
    for group in step2.groups.all():
        _run(group, _ok())
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SUCCEEDED
    (finished,) = Notification.objects.filter(event="campaign_finished", channel="webhook")
    assert "succeeded" in finished.subject and campaign.output_collection in finished.body
    assert not Notification.objects.filter(event="group_failed").exists()

    assert set(_deliver_pending()) == {"sent"}
    assert len(mailoutbox) == 4 and len(hook.received) == 2
    texts = [json.loads(p["body"])["text"] for p in hook.received]
    assert "awaits approval" in texts[0] and "succeeded" in texts[1]


def test_only_the_configured_events_are_sent(make_exec_campaign, owner, hook, mailoutbox):
    campaign, _step1, step2, g1, g2 = _launched(make_exec_campaign, owner, hook, events=["campaign_finished"])
    _run(g1, _failed())
    _run(g2, _ok())
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.FAILED  # nothing can proceed
    assert set(Notification.objects.values_list("event", flat=True)) == {"campaign_finished"}
    group_accept(user=owner, group_id=g1.pk, comment="fine to lose")
    step2.refresh_from_db()
    assert step2.status == StepStatus.AWAITING_APPROVAL
    assert not Notification.objects.filter(event="step_awaiting_approval").exists()


def test_a_campaign_without_notify_sends_nothing(make_exec_campaign, owner, mailoutbox):
    campaign = make_exec_campaign()
    assert campaign.notify == {}
    campaign_launch(user=owner, campaign_id=campaign.pk)
    g1 = Group.objects.filter(step__campaign=campaign).order_by("step__position", "position").first()
    _run(g1, _failed())
    assert not Notification.objects.exists() and mailoutbox == []


def test_a_webhook_answering_500_fails_the_notification_with_the_error_after_retries(make_exec_campaign, owner, hook):
    hook.status = 500
    campaign = make_exec_campaign(notify={"webhook": hook.url, "events": ["group_failed"]})
    campaign_launch(user=owner, campaign_id=campaign.pk)
    g1 = Group.objects.filter(step__campaign=campaign).order_by("step__position", "position").first()
    _run(g1, _failed())
    (row,) = Notification.objects.filter(campaign=campaign)
    notify.apply(args=[row.pk])  # eager: Celery runs the retries in place (no backoff wait)
    row.refresh_from_db()
    assert row.state == "failed" and row.attempts == 4 and len(hook.received) == 4
    assert "HTTP 500" in row.error and "hook exploded" in row.error
    assert notify(row.pk) == "not claimed"  # a failed notification is not sent again by a late duplicate


def test_an_unreachable_webhook_is_recorded_as_failed(make_exec_campaign, owner, settings):
    settings.CM_WEBHOOK_TIMEOUT_SECONDS = 2
    campaign = make_exec_campaign(notify={"webhook": "http://127.0.0.1:9/nothing-listens", "events": ["group_failed"]})
    campaign_launch(user=owner, campaign_id=campaign.pk)
    g1 = Group.objects.filter(step__campaign=campaign).order_by("step__position", "position").first()
    _run(g1, _failed())
    (row,) = Notification.objects.filter(campaign=campaign)
    notify.apply(args=[row.pk])
    row.refresh_from_db()
    assert row.state == "failed" and "ConnectionError" in row.error


@pytest.mark.parametrize(
    ("notify_config", "key"),
    [
        ({"webhook": "ftp://hooks.example.org/x"}, "notify.webhook"),
        ({"webhook": "not a url"}, "notify.webhook"),
        ({"emails": ["ops@example.org", "not-an-address"]}, "notify.emails[1]"),
        ({"emails": ["ops@example.org"], "events": ["group_failed", "lunch"]}, "notify.events[1]"),
        ({"emails": ["ops@example.org"], "events": []}, "notify.events"),
        ({"emails": ["ops@example.org"], "sms": "555"}, "notify.sms"),
        ("everyone", "notify"),
    ],
)
def test_a_bad_notify_config_names_the_field_at_fault(owner, demo_repo, notify_config, key):
    with pytest.raises(ValidationError) as info:
        services.campaign_create(user=owner, data=definition(notify=notify_config))
    assert key in info.value.message_dict


def test_notify_is_normalised_and_survives_the_yaml_round_trip(owner, demo_repo):
    campaign = services.campaign_create(
        user=owner,
        data=definition(
            notify={
                "events": ["campaign_finished", "group_failed"],
                "webhook": " https://hooks.slack.com/services/T0/B0/x ",
                "emails": ["ops@example.org"],
            }
        ),
    )
    assert campaign.notify == {
        "emails": ["ops@example.org"],
        "webhook": "https://hooks.slack.com/services/T0/B0/x",
        "events": ["group_failed", "campaign_finished"],
    }
    text = campaign_to_yaml(campaign)
    assert "notify:" in text
    copy = services.campaign_create(user=owner, data={**parse_campaign_yaml(text), "name": "copy"})
    assert campaign_to_yaml(copy) == text.replace("name: w48-minidrp", "name: copy")
    assert copy.notify == campaign.notify
    # Targets without events list: every event; no target at all: no notifications.
    other = services.campaign_create(user=owner, data=definition(name="other", notify={"emails": ["a@example.org"]}))
    assert other.notify["events"] == ALL_EVENTS
    none = services.campaign_create(user=owner, data=definition(name="none", notify={"events": ["group_failed"]}))
    assert none.notify == {} and "notify" not in campaign_to_yaml(none)


def test_the_api_accepts_notify_and_names_bad_keys(api, owner, demo_repo):
    client = api(owner)
    created = client.post(
        "/api/v1/campaigns/",
        definition(notify={"emails": ["ops@example.org"], "events": ["group_failed"]}),
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["notify"] == {"emails": ["ops@example.org"], "events": ["group_failed"]}
    bad = client.post("/api/v1/campaigns/", definition(name="bad", notify={"email": ["x"]}), format="json")
    assert bad.status_code == 400 and "notify.email" in bad.content.decode()
    wrong = client.post("/api/v1/campaigns/", definition(name="wrong", notify={"webhook": "gopher://x"}), format="json")
    assert wrong.status_code == 400 and "notify.webhook" in wrong.content.decode()


def test_the_form_edits_notify_and_the_page_shows_it(client, owner, science_user, demo_repo):
    campaign = services.campaign_create(user=owner, data=definition())
    client.force_login(owner)
    page = client.get(f"/campaigns/{campaign.pk}/edit/")
    assert b'name="notify_emails"' in page.content and b'name="notify_webhook"' in page.content
    assert page.content.count(b'name="notify_events"') == len(ALL_EVENTS)
    form = {
        "name": campaign.name,
        "campaign_type": campaign.campaign_type,
        "reason": campaign.reason,
        "visibility": campaign.visibility,
        "owner": owner.username,
        "butler_repo": "demo",
        "pipeline": campaign.pipeline,
        "input_collections": "DemoCam/raw/all",
        "data_query": campaign.data_query,
        "version": campaign.version,
        "notify_emails": "ops@example.org\nbroken@",
        "notify_webhook": "https://hooks.example.org/cm",
        "notify_events": ["group_failed", "campaign_finished"],
        "steps-TOTAL_FORMS": "2",
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "100",
        "steps-0-name": "step1",
        "steps-0-pipeline_subset": "step1",
        "steps-1-name": "step2",
        "steps-1-pipeline_subset": "step2",
        "steps-1-depends_on": "step1",
        "steps-1-requires_approval": "on",
    }
    bad = client.post(f"/campaigns/{campaign.pk}/edit/", form)
    assert bad.status_code == 200 and b"notify.emails[1]" in bad.content
    form["notify_emails"] = "ops@example.org"
    saved = client.post(f"/campaigns/{campaign.pk}/edit/", form)
    assert saved.status_code == 302
    campaign.refresh_from_db()
    assert campaign.notify == {
        "emails": ["ops@example.org"],
        "webhook": "https://hooks.example.org/cm",
        "events": ["group_failed", "campaign_finished"],
    }
    page = client.get(f"/campaigns/{campaign.pk}/")
    assert b"ops@example.org" in page.content and b"https://hooks.example.org/cm" in page.content
    # The definition card shows the web hook URL (Slack's carry a token) only to people who can edit.
    client.force_login(science_user)
    page = client.get(f"/campaigns/{campaign.pk}/").content.decode()
    card = page.split('id="notify-config"', 1)[1].split("</dd>", 1)[0]
    assert "ops@example.org" in card and "web hook" in card and "hooks.example.org" not in card
