"""``json_array_overlaps``: "does this JSON list column share an element with these values?" on PostgreSQL
and SQLite alike.

Django's ``__contains`` lookup on a JSONField is a PostgreSQL-only operator (``@>``); on SQLite it raises
NotSupportedError, which made ``?tags=`` on the flags API a 500 under ``make run``. This expression walks the
list with each database's own JSON function (``jsonb_array_elements_text`` / ``json_each``), so a filter
written once means the same on both. A value that is not a list has no elements (never an error).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import NotSupportedError
from django.db.models import BooleanField, Expression, F


class JSONArrayOverlap(Expression):
    """True where the JSON list in ``field`` has an element equal to one of ``values`` (``casefold``: compared in
    lower case); ``negated``: true where it has none of them (a row with an empty or missing list included)."""

    output_field = BooleanField()

    def __init__(self, field: str, values: Iterable[str], *, casefold: bool = False, negated: bool = False):
        super().__init__(output_field=BooleanField())
        self.casefold = casefold
        self.negated = negated
        self.values = [v.lower() for v in values] if casefold else list(values)
        if not self.values:
            raise ValueError("json_array_overlaps needs at least one value")
        self.lhs = F(field)

    def get_source_expressions(self):
        return [self.lhs]

    def set_source_expressions(self, exprs):
        (self.lhs,) = exprs

    def resolve_expression(self, query=None, allow_joins=True, reuse=None, summarize=False, for_save=False):
        copy = self.copy()
        copy.is_summary = summarize
        copy.lhs = self.lhs.resolve_expression(query, allow_joins, reuse, summarize, for_save)
        return copy

    def as_sql(self, compiler, connection):
        raise NotSupportedError(f"json_array_overlaps has no SQL for {connection.vendor}")

    # The SQL is our own text around a column Django compiled; every value is a parameter.
    def as_postgresql(self, compiler, connection):
        column, params = compiler.compile(self.lhs)
        element = "lower(e.v)" if self.casefold else "e.v"
        sql = (
            f"{'NOT ' if self.negated else ''}EXISTS (SELECT 1 FROM jsonb_array_elements_text("  # noqa: S608
            f"CASE WHEN jsonb_typeof({column}) = 'array' THEN {column} ELSE '[]'::jsonb END) AS e(v) "
            f"WHERE {element} = ANY(%s))"
        )
        return sql, (*params, *params, self.values)

    def as_sqlite(self, compiler, connection):
        column, params = compiler.compile(self.lhs)
        element = "lower(je.value)" if self.casefold else "je.value"
        placeholders = ", ".join(["%s"] * len(self.values))
        sql = (
            f"{'NOT ' if self.negated else ''}EXISTS (SELECT 1 FROM json_each("  # noqa: S608
            f"CASE WHEN json_type({column}) = 'array' THEN {column} ELSE '[]' END) AS je "
            f"WHERE {element} IN ({placeholders}))"
        )
        return sql, (*params, *params, *self.values)


def json_array_overlaps(field: str, values: Iterable[str], *, casefold: bool = False) -> JSONArrayOverlap:
    """A filter: the list in ``field`` holds at least one of ``values`` (PostgreSQL's ``&&`` on arrays)."""
    return JSONArrayOverlap(field, values, casefold=casefold)


def json_array_excludes(field: str, values: Iterable[str], *, casefold: bool = False) -> JSONArrayOverlap:
    """A filter: the list in ``field`` holds none of ``values`` (``NOT (column && values)``)."""
    return JSONArrayOverlap(field, values, casefold=casefold, negated=True)
