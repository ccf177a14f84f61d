"""`make run` for real on SQLite: migrate, build the demo repo, seed the demo (which freezes a selection),
then ingest metrics, evaluate a gate and an input, and open the key pages as alice (sqlite_demo_pages.py).

Runs in subprocesses with their own CM_VAR_DIR and DATABASE_URL=sqlite:///..., whatever database the rest
of the suite uses, so the SQLite paths (metrics.portable, core.sqlite_functions, the selection SQL) are
exercised end to end. The broker is kombu's SQLAlchemy transport on SQLite, as in `make run` (no worker)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("sqlite_demo_pages.py")


def _run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"manage.py {' '.join(args)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-8000:]}"
    return done.stdout


def test_make_run_demo_works_on_sqlite(tmp_path):
    var = tmp_path / "var"
    var.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "CELERY_", "CM_", "DJANGO_"))}
    env.update(
        DEBUG="1",
        CM_VAR_DIR=str(var),
        DATABASE_URL=f"sqlite:///{var / 'db.sqlite3'}",
        CELERY_BROKER_URL=f"sqla+sqlite:///{var / 'celery-broker.sqlite3'}",
        CM_SUBMIT_ROOT=str(var / "submit"),
    )
    _run(env, "migrate", "--noinput", "-v", "0")
    _run(env, "build_demo_repo")
    seeded = _run(env, "seed_demo")
    assert "frozen from a selection" in seeded
    # No worker here to run the task sent at launch: the backfill command records the launched groups.
    recorded = _run(env, "group_coverage_record")
    # 3 nights x steps 1 and 2; the tract groups of steps 3 and 4 (8 tracts each) are not known from the mirror.
    assert "w48-minidrp: 6 group(s) recorded, 16 unknown" in recorded, recorded
    out = _run(env, "shell", "-c", SCRIPT.read_text())
    checks = [line for line in out.splitlines() if line.startswith("OK ")]
    assert "ALL OK" in out and len(checks) >= 17, out
    assert "OK metrics explorer" in checks and "OK POST /api/v1/selections/count" in checks
