"""Logs an operator can search: one context (request id, user, campaign, group, task) on every line.

Web and workers log through the standard library; ``logging_config`` renders it either as the plain
lines a developer reads (``make run``) or as one JSON object per line (``CM_LOG_FORMAT=json``, the
production default), with the context that ``structlog.contextvars`` holds for the current request or
task merged into each line, whichever library wrote it.

- ``RequestContextMiddleware`` binds ``request_id`` (the proxy's ``X-Request-ID`` when it is sane, else a new
  one; sent back in the response), ``user``, the URL's name and the campaign/group ids of the URL, and logs
  one ``request`` line per request when ``CM_LOG_REQUESTS`` is on.
- ``bind_task_context`` (connected to Celery's ``task_prerun`` in ``config.celery``) binds the task's id and name
  and the ids among its arguments; tasks bind more (``bind_log_context``) once they know them.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog
from django.conf import settings

logger = logging.getLogger("cm.request")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# URL and task argument names whose values go into the log context, under the name on the right.
CONTEXT_IDS = {
    "campaign_id": "campaign_id",
    "group_id": "group_id",
    "step_id": "step_id",
    "submission_id": "submission_id",
    "dataid_set_id": "dataid_set_id",
}


def bind_log_context(**values: Any) -> None:
    """Add ids to the context of every log line written until the request or task ends."""
    structlog.contextvars.bind_contextvars(**{k: v for k, v in values.items() if v is not None})


def clear_log_context() -> None:
    structlog.contextvars.clear_contextvars()


def _ids_from(kwargs: Mapping[str, Any], *, url_name: str = "") -> dict[str, Any]:
    ids = {CONTEXT_IDS[k]: v for k, v in kwargs.items() if k in CONTEXT_IDS}
    # Campaign pages and API routes name the campaign's id ``pk``.
    if "pk" in kwargs and url_name.startswith(("campaigns:", "api:campaign")):
        ids.setdefault("campaign_id", kwargs["pk"])
    return ids


class RequestContextMiddleware:
    """Bind the request's context for the logs and answer with its ``X-Request-ID``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        clear_log_context()
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        bind_log_context(request_id=request_id)
        started = time.monotonic()
        try:
            response = self.get_response(request)
        finally:
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                bind_log_context(user=user.get_username())
        response["X-Request-ID"] = request_id
        if getattr(settings, "CM_LOG_REQUESTS", False):
            logger.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.monotonic() - started) * 1000, 1),
                },
            )
        clear_log_context()
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        match = request.resolver_match
        url_name = match.view_name if match is not None else ""
        user = getattr(request, "user", None)
        bind_log_context(
            view=url_name or None,
            user=user.get_username() if user is not None and user.is_authenticated else None,
            **_ids_from(view_kwargs, url_name=url_name),
        )
        return None


def bind_task_context(task_id: str | None, task_name: str, kwargs: Mapping[str, Any] | None) -> None:
    """The context of one Celery task run: its id, its name, and the ids among its keyword arguments."""
    clear_log_context()
    bind_log_context(task_id=task_id, task=task_name, **_ids_from(kwargs or {}))


# --------------------------------------------------------------------------------------
# Logging configuration (settings.LOGGING)
# --------------------------------------------------------------------------------------

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and belongs in the JSON.
_RECORD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def _extra_fields(logger_: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    record = event.get("_record")
    if record is not None:
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and not key.startswith("_") and key not in event:
                event[key] = value
    return event


def json_formatter() -> logging.Formatter:
    """One JSON object per line: time, level, logger, message, the bound context and any ``extra=`` fields."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
            _extra_fields,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("message"),
            structlog.processors.JSONRenderer(default=str),
        ],
    )


def logging_config(*, fmt: str, level: str) -> dict[str, Any]:
    """``LOGGING`` for ``fmt`` ``plain`` (the developer's console) or ``json`` (one object per line)."""
    if fmt not in {"plain", "json"}:
        raise ValueError(f"CM_LOG_FORMAT must be 'plain' or 'json', not {fmt!r}")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
            "json": {"()": "core.observability.json_formatter"},
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": fmt}},
        "root": {"handlers": ["console"], "level": level},
        # Gunicorn's own loggers write through ours (one format for the whole process).
        "loggers": {
            "gunicorn.error": {"handlers": [], "propagate": True},
            "gunicorn.access": {"handlers": [], "propagate": True},
        },
    }
