"""`make run`: migrate, create demo data, then serve the app and run a real Celery worker (with beat).

Defaults need no server: SQLite for the database and kombu's SQLAlchemy
transport on SQLite for the broker. One Ctrl-C stops both processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
ADDRESS = os.environ.get("CM_RUN_ADDRESS", "127.0.0.1:8000")


def manage(*args: str) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=ROOT, check=True)


def main() -> int:
    os.environ.setdefault("DEBUG", "1")
    (ROOT / "var").mkdir(exist_ok=True)
    manage("migrate", "--noinput", "-v", "0")
    manage("seed_demo")
    print(f"\nServing http://{ADDRESS}/ and running a Celery worker. Press Ctrl-C once to stop both.\n", flush=True)
    procs = [
        subprocess.Popen(
            [
                PY,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--beat",
                "--loglevel",
                "INFO",
                "--concurrency",
                "2",
                "--schedule",
                str(ROOT / "var" / "celerybeat-schedule"),
            ],
            cwd=ROOT,
            start_new_session=True,
        ),
        subprocess.Popen([PY, "manage.py", "runserver", ADDRESS], cwd=ROOT, start_new_session=True),
    ]

    def stop(*_):
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.time() + 15
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(0)))
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        print("A process stopped; stopping the other.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopping the web server and the worker...")
        return 0
    finally:
        stop()


if __name__ == "__main__":
    sys.exit(main())
