"""Notifications of campaign events (issue "Execution"): e-mail and a Slack-compatible web hook.

``notification_send`` records one ``Notification`` per target configured in the campaign's
``notify`` definition and enqueues the ``notify`` task on commit; ``notification_deliver`` (what
the task calls) claims a row with a conditional update, so a task delivered twice sends once.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from .choices import NotificationChannel, NotificationEvent, NotificationState
from .models import Campaign, Notification

logger = logging.getLogger(__name__)

# A claim older than this belongs to a worker that died mid-send: the row may be claimed again.
STALE_CLAIM = timedelta(minutes=10)


class DeliveryError(Exception):
    """Sending failed in a way that may pass on a later attempt (the task retries it)."""


def absolute_link(path: str) -> str:
    if not path or path.startswith(("http://", "https://")):
        return path
    return f"{settings.CM_BASE_URL}{path if path.startswith('/') else '/' + path}"


def _enqueue(ids: list[int]) -> None:
    if not ids:
        return

    def send() -> None:
        from .tasks import notify

        for notification_id in ids:
            try:
                notify.delay(notification_id)
            except Exception:  # a broker outage must not break the executor; the row stays pending
                logger.exception("Could not enqueue notification %s", notification_id)

    transaction.on_commit(send)


@transaction.atomic
def notification_send(*, campaign_id: int, event: str, subject: str, text: str, link: str = "") -> list[Notification]:
    """Record and enqueue the notifications of ``event`` for the campaign's configured targets.

    Nothing happens when the campaign has no ``notify`` configuration or does not ask for ``event``.
    """
    if event not in NotificationEvent.values:
        raise ValueError(f"Unknown notification event {event!r}")
    campaign = Campaign.objects.filter(pk=campaign_id).only("pk", "notify").first()
    if campaign is None:
        return []
    config: dict[str, Any] = campaign.notify or {}
    if event not in (config.get("events") or []):
        return []
    targets = [(NotificationChannel.EMAIL, email) for email in config.get("emails") or []]
    if config.get("webhook"):
        targets.append((NotificationChannel.WEBHOOK, config["webhook"]))
    link = absolute_link(link)
    created = [
        Notification.objects.create(
            campaign_id=campaign_id,
            event=event,
            channel=channel,
            target=target[:1000],
            subject=subject[:300],
            body=text,
            link=link[:1000],
        )
        for channel, target in targets
    ]
    _enqueue([n.pk for n in created])
    return created


def webhook_payload(notification: Notification) -> dict[str, Any]:
    """A Slack-compatible message: ``text`` for every receiver, ``blocks`` for Slack's layout."""
    text = f"*{notification.subject}*\n{notification.body}"
    if notification.link:
        text += f"\n<{notification.link}|Open in the campaign manager>"
    return {
        "text": text,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": notification.subject[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": notification.body[:2900]}},
            *(
                [{"type": "section", "text": {"type": "mrkdwn", "text": f"<{notification.link}|Open>"}}]
                if notification.link
                else []
            ),
        ],
    }


def _send_email(notification: Notification) -> None:
    body = notification.body + (f"\n\n{notification.link}\n" if notification.link else "\n")
    try:
        send_mail(notification.subject, body, settings.DEFAULT_FROM_EMAIL, [notification.target])
    except Exception as exc:
        raise DeliveryError(f"e-mail to {notification.target}: {type(exc).__name__}: {exc}") from exc


def _send_webhook(notification: Notification) -> None:
    import requests

    try:
        response = requests.post(
            notification.target, json=webhook_payload(notification), timeout=settings.CM_WEBHOOK_TIMEOUT_SECONDS
        )
    except requests.RequestException as exc:
        raise DeliveryError(f"web hook: {type(exc).__name__}: {exc}") from exc
    if not 200 <= response.status_code < 300:
        raise DeliveryError(f"web hook answered HTTP {response.status_code}: {response.text[:500].strip()}")


def notification_claim(*, notification_id: int) -> Notification | None:
    """Take a pending (or abandoned) notification for this attempt; ``None`` if sent, failed or taken."""
    now = timezone.now()
    claimable = Q(state=NotificationState.PENDING) | Q(state=NotificationState.SENDING, claimed__lt=now - STALE_CLAIM)
    taken = Notification.objects.filter(claimable, pk=notification_id).update(
        state=NotificationState.SENDING, claimed=now, attempts=F("attempts") + 1
    )
    if taken != 1:
        return None
    return Notification.objects.get(pk=notification_id)


def notification_deliver(*, notification_id: int, final: bool = True) -> str:
    """Send one notification. Safe to run twice: only a claimed row is sent.

    On failure the error is recorded; unless ``final``, the row goes back to pending and
    ``DeliveryError`` is raised for the task to retry.
    """
    notification = notification_claim(notification_id=notification_id)
    if notification is None:
        return "not claimed"
    try:
        if notification.channel == NotificationChannel.EMAIL:
            _send_email(notification)
        else:
            _send_webhook(notification)
    except DeliveryError as exc:
        state = NotificationState.FAILED if final else NotificationState.PENDING
        Notification.objects.filter(pk=notification.pk, state=NotificationState.SENDING).update(
            state=state, error=str(exc)[:4000]
        )
        logger.warning("Notification %s (attempt %s) failed: %s", notification.pk, notification.attempts, exc)
        if final:
            return NotificationState.FAILED
        raise
    Notification.objects.filter(pk=notification.pk).update(state=NotificationState.SENT, sent=timezone.now(), error="")
    return NotificationState.SENT
