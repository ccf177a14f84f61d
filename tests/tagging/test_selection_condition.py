"""The condition language on tag-table columns: every operator and type, compiled to SQL and run on
PostgreSQL against real rows, and errors that name the column and position."""

from __future__ import annotations

import pytest
from django.db import connection

from tagging.models import TagRow
from tagging.selection.condition import ColumnInfo, ConditionError, compile_condition, tokenize
from tests.tagging.selection_factories import add_plain_tag_rows as add_tag_rows
from tests.tagging.selection_factories import make_plain_tag_table as make_tag_table

COLUMNS = [
    ColumnInfo("c1", "seeing", "float"),
    ColumnInfo("c2", "dome_open", "bool"),
    ColumnInfo("c3", "quality", "enum", ("good", "ok", "bad")),
    ColumnInfo("c4", "note", "string"),
    ColumnInfo("c5", "visits", "int"),
    ColumnInfo("c6", "taken", "datetime"),
]


@pytest.fixture
def table(db, owner, demo_repo):
    """Five rows with every type; the row key names the row."""
    t = make_tag_table(
        owner=owner,
        repo=demo_repo,
        name="cond",
        key_dimensions=["instrument", "exposure"],
        columns=[
            ("seeing", "float"),
            ("dome_open", "bool"),
            ("quality", "enum", ["good", "ok", "bad"]),
            ("note", "string"),
            ("visits", "int"),
            ("taken", "datetime"),
        ],
    )
    values = {
        1: {
            "seeing": 0.7,
            "dome_open": False,
            "quality": "good",
            "note": "it's fine",
            "visits": 3,
            "taken": "2025-11-21T03:00:00+00:00",
        },
        2: {
            "seeing": 1.2,
            "dome_open": True,
            "quality": "bad",
            "note": "dome light",
            "visits": 10,
            "taken": "2025-11-22T03:00:00+00:00",
        },
        3: {"seeing": 0.95, "dome_open": False, "quality": "ok", "visits": 5},
        4: {"seeing": None, "dome_open": True, "quality": "ok", "note": "no seeing"},
        5: {"seeing": 1.0, "quality": "good", "note": "", "visits": 0},
    }
    add_tag_rows(t, [({"instrument": "DemoCam", "exposure": n}, v) for n, v in values.items()], user=owner)
    return t


def matching(table, text: str) -> set[int]:
    compiled = compile_condition(text, COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT r.exposure FROM {TagRow._meta.db_table} r WHERE r.table_id = %s AND {compiled.sql}",
            [table.pk, *compiled.params],
        )
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("seeing < 1.0", {1, 3}),
        ("seeing <= 1.0", {1, 3, 5}),
        ("seeing > 0.95", {2, 5}),
        ("seeing >= 0.95", {2, 3, 5}),
        ("seeing = 1.2", {2}),
        ("seeing == 1.2", {2}),
        ("seeing != 1.2", {1, 3, 5}),
        ("seeing <> 1.2", {1, 3, 5}),
        ("dome_open", {2, 4}),
        ("NOT dome_open", {1, 3, 5}),
        ("dome_open = FALSE", {1, 3}),
        ("dome_open != true", {1, 3}),
        ("seeing < 1.0 AND NOT dome_open", {1, 3}),
        ("seeing > 1.1 OR quality = 'good'", {1, 2, 5}),
        ("NOT (seeing > 1.1 OR quality = 'good')", {3, 4}),
        ("(seeing < 1 OR dome_open) AND quality IN ('ok')", {3, 4}),
        ("quality IN ('good', 'bad')", {1, 2, 5}),
        ("quality NOT IN ('good', 'bad')", {3, 4}),
        ("note = 'it''s fine'", {1}),
        ("note IS NULL", {3}),
        ("note IS NOT NULL", {1, 2, 4, 5}),
        ("seeing IS NULL", {4}),
        ("visits >= 5", {2, 3}),
        ("visits IN (0, 3)", {1, 5}),
        ("taken > '2025-11-21T12:00:00+00:00'", {2}),
        ("seeing < 1e0 and not dome_open", {1, 3}),
    ],
)
def test_each_operator_selects_the_right_rows(table, text, expected):
    assert matching(table, text) == expected


def test_retired_columns_are_usable_and_values_are_read_by_key(db, owner, demo_repo):
    t = make_tag_table(
        owner=owner,
        repo=demo_repo,
        name="retired",
        key_dimensions=["instrument", "exposure"],
        columns=[("old_flag", "bool", None, True)],
    )
    add_tag_rows(t, [({"instrument": "DemoCam", "exposure": 1}, {"old_flag": True})], user=owner)
    compiled = compile_condition("old_flag", [ColumnInfo("c1", "old_flag", "bool")])
    assert compiled.params == ["c1"] and "old_flag" not in compiled.sql


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        (
            "fwhm < 1",
            "No column named 'fwhm' in this tag table (columns: dome_open, note, quality, seeing, taken, visits) (at position 1)",
        ),
        ("seeing < 1 AND fwhm > 2", "No column named 'fwhm'"),
        ("seeing <", "Expected a value for column 'seeing' (float), found the end of the condition (at position 9)"),
        ("seeing < 'x'", "Text is not a value for column 'seeing' (float) (at position 10)"),
        ("visits = 1.5", "1.5 is not an integer for column 'visits' (int)"),
        ("dome_open < TRUE", "Column 'dome_open' is bool: compare it with = or != only (at position 11)"),
        ("dome_open = 1", "A number is not a value for column 'dome_open' (bool)"),
        ("quality = 'great'", "'great' is not one of good, ok, bad for column 'quality' (enum)"),
        ("quality > 'ok'", "enum: compare it with =, != or IN"),
        ("note = TRUE", "TRUE is not a value for column 'note' (string)"),
        ("seeing", "Column 'seeing' is float: follow it with a comparison"),
        ("(seeing < 1", "Expected ')' to close the '(' at position 1"),
        ("seeing < 1)", "Unexpected ')'"),
        ("seeing < 1 dome_open", "Unexpected 'dome_open'; expected AND, OR or the end (at position 12)"),
        ("quality IN 'ok'", "Expected '(' after IN"),
        ("quality IN ('ok' 'bad')", "Expected ',' or ')' in the IN list"),
        ("note IS 'x'", "Expected NULL"),
        ("taken > 'yesterday'", "'yesterday' is not an ISO date and time"),
        ("seeing < 1 ; DROP TABLE x", "Unexpected character ';' at position 12"),
        ("AND seeing < 1", "Expected a column name, found 'AND' (at position 1)"),
    ],
)
def test_errors_name_the_column_and_position(text, message):
    with pytest.raises(ConditionError) as caught:
        compile_condition(text, COLUMNS)
    assert message in caught.value.message


def test_tokens_carry_their_positions():
    tokens = tokenize("seeing <= 1.5 AND NOT x")
    assert [(t.kind, t.value, t.pos) for t in tokens] == [
        ("name", "seeing", 1),
        ("op", "<=", 8),
        ("number", "1.5", 11),
        ("keyword", "AND", 15),
        ("keyword", "NOT", 19),
        ("name", "x", 23),
        ("end", "", 24),
    ]


def test_user_text_reaches_sql_only_as_parameters():
    compiled = compile_condition("note = 'x''); DROP TABLE y; --'", COLUMNS)
    assert "DROP" not in compiled.sql
    assert compiled.params == ["c4", "x'); DROP TABLE y; --"]
