"""Every query parameter the API documents works, on PostgreSQL and on SQLite (``make run``): each list
operation of the schema is called with each of its documented parameters set to a value of the documented
type, with some data to filter, and answers a page (or a 400/404 that names what is wrong), never a 500.
Today's reason: ``?tags=`` on the flags was a PostgreSQL-only JSON lookup, a 500 on SQLite.

The same module runs on SQLite in a subprocess (test_documented_filters_run_on_sqlite_too below)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.db import connection
from drf_spectacular.generators import SchemaGenerator

from tagging.services.flags import flag_import
from tests.tagging.test_flags_exposurelog_params import _messages

ROOT = Path(__file__).resolve().parents[2]


def _list_operations() -> list[tuple[str, dict]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        (path, item["get"])
        for path, item in schema["paths"].items()
        if "get" in item and "{" not in path and item["get"].get("parameters")
    ]


def _value(schema: dict):
    """A plain value of the documented type (the first allowed one when there is a set)."""
    if "example" in schema:
        return schema["example"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind, fmt = schema.get("type"), schema.get("format")
    if kind == "array":
        return [_value(schema.get("items", {}))]
    if kind == "integer":
        return max(schema.get("minimum", 1), 1) if schema.get("minimum", 1) >= 0 else 20251121
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return "true"
    if fmt == "date":
        return "2025-11-21"
    if fmt == "date-time":
        return "2025-11-22T03:00:00"
    if fmt == "uuid":
        return str(uuid.uuid4())
    return "dome"


# Values that a required parameter needs to mean something (the reobservation export needs a campaign).
REQUIRED = {"campaign": "w48-minidrp", "metric": "psf_fwhm", "op": "<", "threshold": "1.5"}

OPERATIONS = _list_operations()


@pytest.fixture
def data(owner, demo_repo, make_campaign):
    make_campaign()
    flag_import(user=owner, repo_label="demo", data=_messages())


@pytest.mark.parametrize(("path", "op"), OPERATIONS, ids=[path for path, _ in OPERATIONS])
def test_each_documented_query_parameter_filters_without_a_server_error(api, owner, data, path, op):
    """One parameter at a time (with the required ones): a page, or a 404 for an object named that does not
    exist; a 400 only for another parameter than the one tried (the value tried is of its documented type)."""
    client = api(owner)
    client.raise_request_exception = False
    required = {p["name"]: REQUIRED.get(p["name"], "x") for p in op["parameters"] if p.get("required")}
    problems = []
    for parameter in op["parameters"]:
        params = {**required, parameter["name"]: _value(parameter["schema"])}
        response = client.get(path, params)
        ok = response.status_code in (200, 404) or (
            response.status_code == 400 and parameter["name"] not in response.json()
        )
        if not ok:
            problems.append(f"GET {path} {params}: {response.status_code} {response.content[:300]!r}")
    assert not problems, f"on {connection.vendor}:\n" + "\n".join(problems)


HUGE = "99999999999999999999999"
HOSTILE_NUMBERS = ["NaN", "inf", "-Infinity", HUGE, "1e400", "0x10", "abc"]


@pytest.mark.parametrize(("path", "op"), OPERATIONS, ids=[path for path, _ in OPERATIONS])
def test_nan_infinity_and_huge_numbers_in_numeric_parameters_are_a_400_naming_them(api, owner, data, path, op):
    client = api(owner)
    client.raise_request_exception = False
    required = {p["name"]: REQUIRED.get(p["name"], "x") for p in op["parameters"] if p.get("required")}
    problems = []
    for parameter in op["parameters"]:
        kind = parameter["schema"].get("type")
        if kind not in ("integer", "number"):
            continue
        # 1e23 is a fine float (finite); as an integer it does not fit in 64 bits.
        hostile = [*HOSTILE_NUMBERS, "1.5"] if kind == "integer" else [v for v in HOSTILE_NUMBERS if v != HUGE]
        for value in hostile:
            response = client.get(path, {**required, parameter["name"]: value})
            if response.status_code != 400 or parameter["name"] not in response.json():
                problems.append(f"{parameter['name']}={value}: {response.status_code} {response.content[:200]!r}")
    assert not problems, f"GET {path} on {connection.vendor}:\n" + "\n".join(problems)


def test_the_flag_tags_filter_answers_on_this_database(api, owner, data):
    """The bug that started this: a JSON-array lookup that only PostgreSQL has."""
    response = api(owner).get("/api/v1/flags/", {"tags": "dome", "exclude_tags": "sky"})
    assert response.status_code == 200
    for message in response.json()["results"]:
        assert "dome" in message["tags"] and "sky" not in message["tags"]


@pytest.mark.skipif(os.environ.get("CM_SQLITE_TWIN") == "1", reason="already the SQLite run")
def test_documented_filters_run_on_sqlite_too(tmp_path):
    """This module and the exposure-log parameters of the flags, again on SQLite (as ``make run`` uses it)."""
    if connection.vendor == "sqlite":
        pytest.skip("the suite itself runs on SQLite")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "CELERY_", "CM_", "DJANGO_"))}
    env.update(
        CM_SQLITE_TWIN="1",
        SECRET_KEY="test-only",
        CM_VAR_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        CELERY_BROKER_URL=f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}",
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/core/test_documented_filters.py",
            "tests/tagging/test_flags_exposurelog_params.py",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert " passed" in done.stdout and "failed" not in done.stdout.splitlines()[-1]
