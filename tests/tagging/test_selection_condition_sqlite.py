"""The condition language's SQLite form (``make run`` serves the app on SQLite) selects the same rows as
its PostgreSQL form: every case of test_selection_condition.py, compiled both ways, run on the same
stored rows (PostgreSQL through Django, SQLite in memory)."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from types import SimpleNamespace

import pytest

from tagging.models import TagRow
from tagging.selection import condition
from tests.tagging import test_selection_condition as pg_cases
from tests.tagging.test_selection_condition import COLUMNS, matching, table  # noqa: F401 (fixture)

CASES = next(m for m in pg_cases.test_each_operator_selects_the_right_rows.pytestmark if m.name == "parametrize").args[
    1
]
CASES = [*CASES, ("taken < '2025-11-22T05:00:00+01:00'", {1, 2}), ("taken IS NULL", {3, 4, 5})]


def _sqlite_matching(tag_table, text: str, monkeypatch) -> set[int]:
    with monkeypatch.context() as m:
        m.setattr(condition, "connection", SimpleNamespace(vendor="sqlite"))
        compiled = condition.compile_condition(text, COLUMNS)
    db = sqlite3.connect(":memory:")
    db.execute('CREATE TABLE r (exposure INTEGER, "values" TEXT)')
    rows = TagRow.objects.filter(table=tag_table).values_list("exposure", "values")
    db.executemany("INSERT INTO r VALUES (?, ?)", [(e, json.dumps(v)) for e, v in rows])
    # As Django's SQLite backend adapts them: a date-time is sent as ISO text with a space.
    params = [p.isoformat(" ") if isinstance(p, datetime) else p for p in compiled.params]
    found = db.execute(f"SELECT exposure FROM r WHERE {compiled.sql.replace('%s', '?')}", params).fetchall()
    return {row[0] for row in found}


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_sqlite_form_selects_what_postgresql_selects(table, text, expected, monkeypatch):  # noqa: F811
    assert _sqlite_matching(table, text, monkeypatch) == matching(table, text) == expected
