"""Helpers for tests that start real processes against the test database."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def test_database_url() -> str:
    """A DATABASE_URL that points a child process at the database this test is using."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    host = s["HOST"] or "localhost"
    port = s["PORT"] or "5432"
    return f"postgresql://{auth}@{host}:{port}/{s['NAME']}"


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["DATABASE_URL"] = test_database_url()
    env["CELERY_BROKER_URL"] = settings.CELERY_BROKER_URL
    env.setdefault("SECRET_KEY", "test-only")
    env["CM_BUTLER_REPO_ROOTS"] = ",".join(settings.CM_BUTLER_REPO_ROOTS)
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def python() -> str:
    return sys.executable
