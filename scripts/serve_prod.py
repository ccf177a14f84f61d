"""`make serve-prod`: the production shape on this machine, on PostgreSQL and Redis.

Migrations and collectstatic first, then the demo data (unless ``CM_SERVE_PROD_DEMO=0``), then honcho runs the
``Procfile``: gunicorn (``config.settings_production``: WhiteNoise, JSON logs, /healthz, /readyz, /metrics),
two Celery workers and one beat. Every setting comes from the environment as in a deployment; the defaults
below only fill what a laptop lacks (a local database and broker, a secret key kept under var/, plain HTTP).
One Ctrl-C stops everything.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEFAULT_DATABASE = "postgresql://postgres@localhost:5432/campaign_manager"
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"


def _secret_key(var: Path) -> str:
    path = var / "prod-secret-key"
    if not path.exists():
        var.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database of ``url`` if it does not exist (the user needs CREATEDB)."""
    import psycopg
    from psycopg import sql

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin_url = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"Created PostgreSQL database {name}.")


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_production")
    env.setdefault("DATABASE_URL", DEFAULT_DATABASE)
    env.setdefault("CELERY_BROKER_URL", DEFAULT_BROKER)
    var = Path(env.get("CM_VAR_DIR", ROOT / "var" / "prod"))
    env["CM_VAR_DIR"] = str(var)
    env.setdefault("SECRET_KEY", _secret_key(var))
    env.setdefault("CM_WEB_BIND", "127.0.0.1:8000")
    host = env["CM_WEB_BIND"].rsplit(":", 1)[0]
    env.setdefault("ALLOWED_HOSTS", ",".join(sorted({host, "127.0.0.1", "localhost"})))
    # This machine serves plain HTTP on loopback; behind a TLS proxy leave both on (the production default).
    env.setdefault("CM_SSL_REDIRECT", "0")
    env.setdefault("CM_SECURE_COOKIES", "0")
    env.setdefault("CM_WEB_WORKERS", "3")
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("DEBUG", None)
    return env


def main() -> int:
    env = environment()
    if not env["DATABASE_URL"].startswith("postgres"):
        sys.exit("serve-prod runs on PostgreSQL: set DATABASE_URL=postgresql://...")
    if not env["CELERY_BROKER_URL"].startswith("redis"):
        sys.exit("serve-prod runs on Redis: set CELERY_BROKER_URL=redis://...")
    ensure_database(env["DATABASE_URL"])

    def manage(*args: str) -> None:
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)

    manage("migrate", "--noinput", "-v", "0")
    manage("collectstatic", "--noinput", "-v", "0")
    if env.get("CM_SERVE_PROD_DEMO", "1") != "0":
        manage("build_demo_repo")
        manage("seed_demo")
    print(f"\nServing http://{env['CM_WEB_BIND']}/ (gunicorn), two Celery workers and beat. Ctrl-C stops them.\n")
    return subprocess.run([str(BIN / "honcho"), "start", "-f", "Procfile"], cwd=ROOT, env=env, check=False).returncode


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
