"""The production shape: settings that pass `check --deploy`, and `make serve-prod` serving for real.

`scripts/serve_prod.py` is run as `make serve-prod` runs it, on a database of its own on the test PostgreSQL
server and a Redis db of its own: migrations, collectstatic, then honcho with gunicorn, two Celery workers and beat.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time
import uuid
from urllib.parse import urlparse

import pytest
import requests
from django.conf import settings
from django.db import connection

from tests.helpers import ROOT, python


def _production_env(**extra: str) -> dict[str, str]:
    # The browser tests set DJANGO_ALLOW_ASYNC_UNSAFE in this process; a deployment never has it.
    env = {
        k: v for k, v in os.environ.items() if k not in {"DEBUG", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings_production",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="cm.example.org",
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def test_the_production_settings_pass_the_deployment_checks_with_no_warning():
    result = subprocess.run(
        [python(), "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=_production_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_production_settings_refuse_debug():
    result = subprocess.run(
        [python(), "manage.py", "check"], cwd=ROOT, env=_production_env(DEBUG="1"), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert "refuses DEBUG=1" in result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_url(database: str) -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgresql://{auth}@{s['HOST'] or 'localhost'}:{s['PORT'] or '5432'}/{database}"


def _other_redis_db(url: str) -> str:
    parsed = urlparse(url)
    db = int(parsed.path.lstrip("/") or 0)
    return parsed._replace(path=f"/{(db + 3) % 16}").geturl()


@pytest.fixture
def serve_prod(tmp_path):
    if connection.vendor != "postgresql" or not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("make serve-prod runs on PostgreSQL and Redis; this run has neither")
    import psycopg

    database = f"cm_serve_prod_{uuid.uuid4().hex[:8]}"
    port = _free_port()
    env = _production_env(
        DATABASE_URL=_server_url(database),
        CELERY_BROKER_URL=_other_redis_db(settings.CELERY_BROKER_URL),
        CM_VAR_DIR=str(tmp_path / "var"),
        CM_WEB_BIND=f"127.0.0.1:{port}",
        ALLOWED_HOSTS="127.0.0.1",
        CM_WEB_WORKERS="2",
        CM_SERVE_PROD_DEMO="0",
    )
    log = open(tmp_path / "serve-prod.log", "w+")
    proc = subprocess.Popen(
        [python(), "scripts/serve_prod.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, "serve-prod stopped:\n" + (tmp_path / "serve-prod.log").read_text()[-4000:]
            try:
                if requests.get(f"{base}/readyz", timeout=10).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, (
                "not ready within 240 s:\n" + (tmp_path / "serve-prod.log").read_text()[-4000:]
            )
            time.sleep(1)
        yield base, env, tmp_path / "serve-prod.log"
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # as one Ctrl-C does
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
        with psycopg.connect(_server_url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@pytest.mark.slow
@pytest.mark.django_db
def test_serve_prod_serves_hashed_static_files_logs_in_answers_metrics_and_runs_two_workers(serve_prod):
    base, env, log_path = serve_prod
    subprocess.run(
        [python(), "manage.py", "createsuperuser", "--noinput", "--username", "ops", "--email", "ops@example.org"],
        cwd=ROOT, env={**env, "DJANGO_SUPERUSER_PASSWORD": "a-long-ops-password-42"}, check=True, timeout=120,
    )  # fmt: skip

    health = requests.get(f"{base}/healthz", timeout=10)
    assert health.status_code == 200 and health.json() == {"ok": True}
    ready = requests.get(f"{base}/readyz", timeout=30).json()
    assert set(ready.values()) == {"OK"} and any(k.startswith("Broker") for k in ready)

    session = requests.Session()
    login_page = session.get(f"{base}/login/", timeout=10)
    assert login_page.status_code == 200
    css = re.search(r'href="(/static/css/[^"]+\.[0-9a-f]{12}\.css)"', login_page.text)
    assert css, "the page does not link a hashed stylesheet"
    static = session.get(base + css.group(1), timeout=10)
    assert static.status_code == 200
    assert "immutable" in static.headers["Cache-Control"]
    gzipped = session.get(base + css.group(1), headers={"Accept-Encoding": "gzip"}, timeout=10)
    assert gzipped.headers.get("Content-Encoding") == "gzip"

    token = session.cookies["csrftoken"]
    answer = session.post(
        f"{base}/login/",
        data={"username": "ops", "password": "a-long-ops-password-42", "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base}/login/", "X-Request-ID": "serve-prod-login-1"},
        timeout=10,
    )
    assert answer.status_code == 200 and "Campaigns" in answer.text
    assert answer.history and answer.history[0].headers["X-Request-ID"] == "serve-prod-login-1"

    metrics = requests.get(f"{base}/metrics", timeout=10).text
    assert 'cm_groups{state="running"}' in metrics
    assert "django_http_requests_total_by_method_total" in metrics  # merged from the gunicorn workers

    ping = subprocess.run(
        [python(), "-m", "celery", "-A", "config", "inspect", "ping", "--json", "--timeout", "10"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    answered = set(json.loads(ping.stdout.strip().splitlines()[-1]))
    assert {n.split("@")[0] for n in answered} >= {"worker1", "worker2"}, ping.stdout + ping.stderr

    lines = [json.loads(line.split("| ", 1)[1]) for line in log_path.read_text().splitlines() if "| {" in line]
    requests_logged = [line for line in lines if line.get("logger") == "cm.request"]
    assert any(line.get("request_id") == "serve-prod-login-1" for line in requests_logged)
