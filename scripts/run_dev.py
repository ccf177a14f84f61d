"""`make run`: migrate, create demo data, then serve the app and run a real Celery worker (with beat).

Defaults need no server: SQLite for the database and kombu's SQLAlchemy
transport on SQLite for the broker. One Ctrl-C stops both processes.
"""

from __future__ import annotations

import contextlib
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
    manage("build_demo_repo")
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
                proc.terminate()  # the main process only: Celery then stops its pool children cleanly
        deadline = time.time() + 15
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)  # leftovers, e.g. the autoreloader's child

    def interrupt(*_):
        raise KeyboardInterrupt

    # Installed explicitly: a shell that starts us in the background would otherwise leave SIGINT ignored.
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
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
