"""JSON logs carry the request's and the task's context: request id, user, campaign, group and task ids."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import time

import pytest
from django.conf import settings

from core.observability import bind_log_context, clear_log_context, json_formatter, logging_config
from tests.helpers import ROOT, child_env, python


@pytest.fixture
def json_log():
    """Everything logged to the root logger, as the JSON lines production writes."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]

    yield lines
    root.removeHandler(handler)
    root.setLevel(old_level)
    clear_log_context()


def test_a_json_line_has_time_level_logger_message_bound_context_and_extra_fields(json_log):
    bind_log_context(campaign_id=7, group_id=42)
    logging.getLogger("campaigns.execution.runner").warning("group %s failed", "night-20251121", extra={"attempt": 2})
    (line,) = json_log()
    assert line["message"] == "group night-20251121 failed"
    assert line["level"] == "warning"
    assert line["logger"] == "campaigns.execution.runner"
    assert line["campaign_id"] == 7 and line["group_id"] == 42 and line["attempt"] == 2
    assert line["time"].endswith("Z")


def test_an_exception_is_one_json_line_with_its_traceback_in_a_field(json_log):
    try:
        raise RuntimeError("the registry went away")
    except RuntimeError:
        logging.getLogger("x").exception("poll failed")
    (line,) = json_log()
    assert line["message"] == "poll failed"
    assert "RuntimeError: the registry went away" in line["exception"]


def test_logging_config_refuses_an_unknown_format():
    with pytest.raises(ValueError, match="CM_LOG_FORMAT"):
        logging_config(fmt="xml", level="INFO")


@pytest.mark.django_db
def test_a_request_is_logged_with_its_id_user_view_and_campaign(client, campaign, owner, json_log, settings):
    settings.CM_LOG_REQUESTS = True
    client.force_login(owner)
    response = client.get(f"/campaigns/{campaign.pk}/", HTTP_X_REQUEST_ID="req-abc.123")
    assert response.status_code == 200
    assert response["X-Request-ID"] == "req-abc.123"
    (line,) = [entry for entry in json_log() if entry["logger"] == "cm.request"]
    assert line["request_id"] == "req-abc.123"
    assert line["user"] == "alice"
    assert line["view"] == "campaigns:detail"
    assert line["campaign_id"] == campaign.pk
    assert line["status"] == 200 and line["method"] == "GET" and line["duration_ms"] >= 0


@pytest.mark.django_db
def test_an_unusable_request_id_is_replaced_by_a_fresh_one(client, owner):
    client.force_login(owner)
    response = client.get("/campaigns/", HTTP_X_REQUEST_ID='bad id with spaces and "quotes"')
    assert response["X-Request-ID"] != 'bad id with spaces and "quotes"'
    assert len(response["X-Request-ID"]) == 32
    assert client.get("/campaigns/")["X-Request-ID"] != response["X-Request-ID"]


def test_the_context_of_one_request_does_not_leak_into_the_next(json_log, rf):
    from core.observability import RequestContextMiddleware

    def view(request):
        logging.getLogger("v").info("inside")
        from django.http import HttpResponse

        return HttpResponse("ok")

    middleware = RequestContextMiddleware(view)
    first = rf.get("/", HTTP_X_REQUEST_ID="first")
    first.user = type("Anon", (), {"is_authenticated": False})()
    middleware(first)
    logging.getLogger("v").info("between requests")
    inside, between = json_log()
    assert inside["request_id"] == "first"
    assert "request_id" not in between


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_with_json_logs_writes_its_task_lines_with_the_task_id_and_name():
    from campaigns.tasks import heartbeat

    if settings.CELERY_BROKER_URL.startswith("memory"):
        pytest.skip("an in-process memory broker cannot reach a worker process")
    proc = subprocess.Popen(
        [python(), "-m", "celery", "-A", "config", "worker", "--pool", "solo", "--hostname", "jsonworker@%h",
         "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=child_env(CM_LOG_FORMAT="json"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        result = heartbeat.delay()
        deadline = time.monotonic() + 60
        lines: list[dict] = []
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            raw = proc.stdout.readline()
            if not raw:
                break
            if raw.startswith("{"):
                lines.append(json.loads(raw))
                if any(line.get("task_id") == result.id and "succeeded" in line["message"] for line in lines):
                    break
        done = [line for line in lines if line.get("task_id") == result.id]
        assert done, f"no JSON line of the task in the worker's output: {lines[-5:]}"
        assert all(line["task"] == "campaigns.tasks.heartbeat" for line in done)
        assert any("succeeded" in line["message"] for line in done)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
