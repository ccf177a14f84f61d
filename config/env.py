"""Small helpers that read typed settings from the environment."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ValueError(f"Environment variable {name} must be an integer, got {value!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> int | None:
    """Seconds in ``"3600"``, ``"90m"``, ``"12h"``, ``"30d"`` or ``"2w"``; None for ``"off"``, ``"0"`` or ``""``."""
    value = text.strip().lower()
    if value in {"", "off", "none", "0"}:
        return None
    unit = _DURATION_UNITS.get(value[-1]) if value[-1].isalpha() else 1
    number = value[:-1] if value[-1].isalpha() else value
    if unit is None or not number.isdigit() or int(number) <= 0:
        raise ValueError(f"not a duration: {text!r} (use e.g. 3600, 90m, 12h, 30d, 2w or off)")
    return int(number) * unit


def env_duration(name: str, default: int | None) -> int | None:
    """A duration in seconds from the environment (see ``parse_duration``); None means off."""
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"Environment variable {name}: {exc}") from exc


def env_json(name: str, default):
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"Environment variable {name} must be JSON: {exc}") from exc


def database_from_url(url: str, base_dir: Path) -> dict:
    """Turn ``postgresql://user:pw@host:port/name`` or ``sqlite:///path`` into a Django DATABASES entry."""
    parsed = urlparse(url)
    scheme = parsed.scheme.split("+")[0]
    if scheme == "sqlite":
        # sqlite:///relative/path or sqlite:////absolute/path
        path = unquote(parsed.path[1:]) if parsed.path.startswith("/") else unquote(parsed.path)
        name = Path(path) if Path(path).is_absolute() else base_dir / path
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(name),
            "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
            "TEST": {"NAME": str(name.with_name("test-" + name.name))},
        }
    if scheme in {"postgres", "postgresql", "pgsql"}:
        options = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parsed.path.lstrip("/")) or "postgres",
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "",
            "PORT": str(parsed.port or ""),
            "OPTIONS": options,
            "CONN_MAX_AGE": 0,
        }
    raise ValueError(f"DATABASE_URL scheme {parsed.scheme!r} is not supported (use postgresql:// or sqlite:///)")
