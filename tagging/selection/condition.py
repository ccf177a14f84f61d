"""A small, safe condition language over the columns of a tag table, compiled to SQL on ``TagRow.values``.

    seeing < 1.0 AND NOT dome_open
    (quality IN ('good', 'ok') OR seeing <= 0.8) AND note IS NOT NULL

Columns are named by their current ``TagColumn.name`` (retired columns too) and read from the row's
``values`` JSON by the column's stable ``key``, cast to the column's type. Operators: ``= != <> < <= > >=``,
``AND OR NOT``, parentheses, ``IN (...)``, ``NOT IN (...)``, ``IS NULL``, ``IS NOT NULL``, and a bare
``bool`` column name (true when the value is true). Literals: numbers, 'quoted text' (a quote doubled
inside), TRUE, FALSE. Every error names the column or token and its character position (1-based).
Nothing from the text reaches SQL except through parameters: column keys come from the table's schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection

from core.errors import InputError

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|-?\.\d+(?:[eE][-+]?\d+)?)
      | (?P<string>'(?:[^']|'')*')
      | (?P<op><=|>=|!=|<>|==|=|<|>)
      | (?P<paren>[(),])
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<bad>\S)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"AND", "OR", "NOT", "IN", "IS", "NULL", "TRUE", "FALSE"}
# SQL cast of each column type; the JSON value is read as text (->>) and cast.
_CASTS = {
    "int": "numeric",
    "float": "double precision",
    "bool": "boolean",
    "string": None,
    "enum": None,
    "datetime": "timestamptz",
}


def json_value_sql(values_sql: str, type_: str) -> str:
    """SQL for one value of a JSON column (``values_sql``, our own alias) by a key given as a ``%s``
    parameter, cast to the column type. PostgreSQL reads it as text and casts; SQLite's ``->>`` already
    gives a typed value (true/false as 1/0), and a date-time is compared in its normal UTC form."""
    base = f"({values_sql} ->> %s)"
    if connection.vendor == "postgresql":
        cast = _CASTS[type_]
        return f"{base}::{cast}" if cast else base
    if type_ in ("int", "float"):
        return f"CAST({base} AS REAL)"
    if type_ == "datetime":
        return f"datetime({base})"
    return base


def json_missing_sql(values_sql: str) -> tuple[str, int]:
    """SQL true when a key (``%s`` parameters) is absent or JSON null; and how many times the key is a parameter."""
    if connection.vendor == "postgresql":
        return f"(({values_sql} -> %s) IS NULL OR jsonb_typeof({values_sql} -> %s) = 'null')", 2
    return f"(({values_sql} ->> %s) IS NULL)", 1


class ConditionError(InputError):
    """A condition that does not parse or does not fit the table's columns (message names the position)."""


@dataclass(frozen=True)
class Token:
    kind: str  # number, string, op, paren, name, keyword, end
    value: str
    pos: int  # 1-based character position


@dataclass(frozen=True)
class ColumnInfo:
    key: str
    name: str
    type: str
    enum_values: tuple[str, ...] = ()


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            break
        kind = match.lastgroup or "bad"
        value = match.group(kind)
        start = match.start(kind) + 1
        if kind == "bad":
            raise ConditionError(f"Unexpected character {value!r} at position {start}.", field="condition")
        if kind == "name" and value.upper() in _KEYWORDS:
            kind, value = "keyword", value.upper()
        tokens.append(Token(kind, value, start))
        pos = match.end()
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


class _Compiler:
    """Recursive descent over the tokens, emitting SQL with ``%s`` parameters as it goes."""

    def __init__(self, text: str, columns: dict[str, ColumnInfo], values_sql: str):
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.columns = columns
        self.values_sql = values_sql
        self.params: list[Any] = []
        self.used: set[str] = set()

    # -- tokens --
    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def error(self, message: str, token: Token | None = None) -> ConditionError:
        token = token or self.peek()
        return ConditionError(f"{message} (at position {token.pos}).", field="condition")

    def expect_keyword(self, word: str) -> None:
        token = self.take()
        if token.kind != "keyword" or token.value != word:
            raise self.error(f"Expected {word}, found {_describe(token)}", token)

    # -- grammar --
    def compile(self) -> str:
        if self.peek().kind == "end":
            raise ConditionError("The condition is empty.", field="condition")
        sql = self.or_expr()
        if self.peek().kind != "end":
            raise self.error(f"Unexpected {_describe(self.peek())}; expected AND, OR or the end")
        return sql

    def or_expr(self) -> str:
        parts = [self.and_expr()]
        while self.peek().kind == "keyword" and self.peek().value == "OR":
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def and_expr(self) -> str:
        parts = [self.not_expr()]
        while self.peek().kind == "keyword" and self.peek().value == "AND":
            self.take()
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def not_expr(self) -> str:
        if self.peek().kind == "keyword" and self.peek().value == "NOT":
            self.take()
            # NOT of a comparison on a missing value is false, as in SQL; "x IS NULL" says it explicitly.
            return f"(NOT COALESCE({self.not_expr()}, FALSE))"
        return self.atom()

    def atom(self) -> str:
        token = self.peek()
        if token.kind == "paren" and token.value == "(":
            self.take()
            sql = self.or_expr()
            closing = self.take()
            if closing.kind != "paren" or closing.value != ")":
                raise self.error(
                    f"Expected ')' to close the '(' at position {token.pos}, found {_describe(closing)}", closing
                )
            return sql
        if token.kind != "name":
            raise self.error(f"Expected a column name, found {_describe(token)}", token)
        return self.predicate()

    def column(self, token: Token) -> ColumnInfo:
        info = self.columns.get(token.value)
        if info is None:
            known = ", ".join(sorted(self.columns)) or "none"
            raise self.error(f"No column named {token.value!r} in this tag table (columns: {known})", token)
        self.used.add(info.name)
        return info

    def value_sql(self, info: ColumnInfo) -> str:
        self.params.append(info.key)
        return json_value_sql(self.values_sql, info.type)

    def placeholder(self, info: ColumnInfo) -> str:
        # SQLite has no date-time type: both sides go through datetime() (UTC, one text form).
        return "datetime(%s)" if info.type == "datetime" and connection.vendor != "postgresql" else "%s"

    def predicate(self) -> str:
        name_token = self.take()
        info = self.column(name_token)
        nxt = self.peek()
        if nxt.kind == "keyword" and nxt.value == "IS":
            self.take()
            negate = False
            if self.peek().kind == "keyword" and self.peek().value == "NOT":
                self.take()
                negate = True
            self.expect_keyword("NULL")
            # A JSON null counts as missing, like an absent key.
            test, uses = json_missing_sql(self.values_sql)
            self.params.extend([info.key] * uses)
            return f"(NOT {test})" if negate else test
        if nxt.kind == "keyword" and nxt.value in ("IN", "NOT"):
            negate = nxt.value == "NOT"
            self.take()
            if negate:
                self.expect_keyword("IN")
            opening = self.take()
            if opening.kind != "paren" or opening.value != "(":
                raise self.error(f"Expected '(' after IN, found {_describe(opening)}", opening)
            column_sql = self.value_sql(info)
            items = [self.literal(info)]
            while self.peek().kind == "paren" and self.peek().value == ",":
                self.take()
                items.append(self.literal(info))
            closing = self.take()
            if closing.kind != "paren" or closing.value != ")":
                raise self.error(f"Expected ',' or ')' in the IN list, found {_describe(closing)}", closing)
            self.params.extend(items)
            placeholders = ", ".join([self.placeholder(info)] * len(items))
            return f"({column_sql} {'NOT IN' if negate else 'IN'} ({placeholders}))"
        if nxt.kind == "op":
            op_token = self.take()
            op = {"==": "=", "<>": "!="}.get(op_token.value, op_token.value)
            if info.type in ("bool",) and op not in ("=", "!="):
                raise self.error(f"Column {info.name!r} is bool: compare it with = or != only", op_token)
            if info.type == "enum" and op not in ("=", "!="):
                raise self.error(f"Column {info.name!r} is an enum: compare it with =, != or IN", op_token)
            column_sql = self.value_sql(info)
            self.params.append(self.literal(info))
            return f"({column_sql} {op} {self.placeholder(info)})"
        # A bare bool column: true when the stored value is true.
        if info.type != "bool":
            raise self.error(
                f"Column {info.name!r} is {info.type}: follow it with a comparison, IN or IS NULL "
                f"(only bool columns stand alone), found {_describe(nxt)}",
                nxt,
            )
        return f"COALESCE({self.value_sql(info)}, FALSE)"

    def literal(self, info: ColumnInfo) -> Any:
        token = self.take()
        where = f"for column {info.name!r} ({info.type})"
        if token.kind == "keyword" and token.value in ("TRUE", "FALSE"):
            if info.type != "bool":
                raise self.error(f"{token.value} is not a value {where}", token)
            return token.value == "TRUE"
        if token.kind == "number":
            if info.type == "int":
                try:
                    return int(token.value)
                except ValueError:
                    raise self.error(f"{token.value} is not an integer {where}", token) from None
            if info.type == "float":
                return float(token.value)
            raise self.error(f"A number is not a value {where}", token)
        if token.kind == "string":
            text = token.value[1:-1].replace("''", "'")
            if info.type in ("string",):
                return text
            if info.type == "enum":
                if info.enum_values and text not in info.enum_values:
                    raise self.error(f"{text!r} is not one of {', '.join(info.enum_values)} {where}", token)
                return text
            if info.type == "datetime":
                try:
                    return datetime.fromisoformat(text)
                except ValueError:
                    raise self.error(f"{text!r} is not an ISO date and time {where}", token) from None
            raise self.error(f"Text is not a value {where}", token)
        raise self.error(f"Expected a value {where}, found {_describe(token)}", token)


def _describe(token: Token) -> str:
    if token.kind == "end":
        return "the end of the condition"
    return f"{token.value!r}"


@dataclass
class CompiledCondition:
    sql: str
    params: list[Any]
    columns_used: list[str]


def compile_condition(text: str, columns: list[ColumnInfo], *, values_sql: str = 'r."values"') -> CompiledCondition:
    """SQL for ``text`` over a tag row's ``values`` (``values_sql`` is our own alias, never user text)."""
    by_name = {c.name: c for c in columns}
    compiler = _Compiler(text, by_name, values_sql)
    sql = compiler.compile()
    return CompiledCondition(sql, compiler.params, sorted(compiler.used))
