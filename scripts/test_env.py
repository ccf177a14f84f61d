"""`make test`: choose the backends, say which, then run ruff, mypy and the whole pytest suite.

PostgreSQL (``DATABASE_URL``, else localhost:5432 database ``test``) and Redis
(localhost:6379) are used when they answer; otherwise SQLite and kombu's
SQLAlchemy transport on SQLite (a broker with no server). On CI (``CI`` set)
PostgreSQL and Redis are required: they are started if installed but stopped,
and the run fails if they still do not answer.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEFAULT_PG = "postgresql://postgres@localhost:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/15"


def _port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _postgres_ok(url: str) -> str | None:
    """The server version if we can log in and create databases, else None."""
    try:
        import psycopg
    except ImportError:
        return None
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            return version
    except Exception as exc:
        print(f"  PostgreSQL at {urlparse(url).hostname}:{urlparse(url).port or 5432} did not answer: {exc}".rstrip())
        return None


def _redis_ok(url: str) -> str | None:
    try:
        import redis

        info = redis.Redis.from_url(url, socket_connect_timeout=2).info("server")
        return info.get("redis_version", "?")
    except Exception as exc:
        print(f"  Redis at {url} did not answer: {exc}")
        return None


def _start_postgres() -> None:
    if shutil.which("pg_ctlcluster") is None:
        return
    for version_dir in sorted(glob.glob("/etc/postgresql/*")):
        version = Path(version_dir).name
        print(f"  starting PostgreSQL {version} (pg_ctlcluster)...")
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=False)
    for _ in range(30):
        if _port_open("127.0.0.1", 5432):
            return
        time.sleep(1)


def _start_redis() -> None:
    if shutil.which("redis-server") is None:
        return
    print("  starting Redis (redis-server --daemonize yes)...")
    subprocess.run(
        [
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        check=False,
    )
    for _ in range(20):
        if _port_open("127.0.0.1", 6379):
            return
        time.sleep(0.5)


def choose_backends(env: dict[str, str]) -> tuple[str, str]:
    on_ci = bool(os.environ.get("CI"))
    pg_url = os.environ.get("DATABASE_URL") or DEFAULT_PG
    redis_url = os.environ.get("CM_TEST_REDIS_URL") or DEFAULT_REDIS

    pg_version = _postgres_ok(pg_url) if pg_url.startswith("postgres") else None
    if pg_version is None and on_ci and pg_url.startswith("postgres"):
        _start_postgres()
        pg_version = _postgres_ok(pg_url)
    redis_version = _redis_ok(redis_url)
    if redis_version is None and on_ci:
        _start_redis()
        redis_version = _redis_ok(redis_url)

    if on_ci and (pg_version is None or redis_version is None):
        missing = [name for name, v in (("PostgreSQL", pg_version), ("Redis", redis_version)) if v is None]
        sys.exit(
            f"CI must test against PostgreSQL and Redis, but {', '.join(missing)} could not be reached or started."
        )

    var = ROOT / "var"
    var.mkdir(exist_ok=True)
    if pg_version:
        env["DATABASE_URL"] = pg_url
        parsed = urlparse(pg_url)
        db_label = f"PostgreSQL {pg_version} at {parsed.hostname}:{parsed.port or 5432} (test database test_{parsed.path.lstrip('/')})"
    else:
        env["DATABASE_URL"] = f"sqlite:///{var / 'test.sqlite3'}"
        db_label = "SQLite (var/test-test.sqlite3) - PostgreSQL was not reachable"
    if redis_version:
        env["CELERY_BROKER_URL"] = redis_url
        broker_label = f"Redis {redis_version} at {redis_url}"
    else:
        env["CELERY_BROKER_URL"] = f"sqla+sqlite:///{var / 'test-broker.sqlite3'}"
        broker_label = "kombu SQLAlchemy transport on SQLite (no server) - Redis was not reachable"
    return db_label, broker_label


def run(cmd: list[str], env: dict[str, str]) -> int:
    print("\n$ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=ROOT, env=env, check=False).returncode


def main(argv: list[str]) -> int:
    env = dict(os.environ)
    env.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")
    env["CM_VAR_DIR"] = str(ROOT / "var" / "test")
    print("Choosing test backends:")
    db_label, broker_label = choose_backends(env)
    print(f"  database: {db_label}\n  broker:   {broker_label}", flush=True)

    checks = [
        [str(BIN / "ruff"), "check", "."],
        [str(BIN / "ruff"), "format", "--check", "."],
        [str(BIN / "mypy"), "core", "campaigns", "tagging", "metrics", "cmclient", "config", "lsst_adapter"],
    ]
    for cmd in checks:
        code = run(cmd, env)
        if code != 0:
            print(f"\n{cmd[0].rsplit('/', 1)[-1]} failed (exit {code}).")
            return code
    code = run([str(BIN / "pytest"), *argv], env)
    print(f"\nTests ran against: {db_label}; broker: {broker_label}.")
    if code == 5:
        print("pytest collected no tests: that is a failure here.")
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
