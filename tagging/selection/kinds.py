"""The term kinds of this app, registered in ``TaggingConfig.ready``: where, DataID set, tag table, flags and
bad data. (The metrics app registers ``metric`` in its own ``ready``.)"""

from __future__ import annotations

from typing import Any

from . import compile as c
from . import recipe as r
from .terms import Predicate, TermContext, TermKind, register_term_kind


def _where(term: dict[str, Any], ctx: TermContext) -> Predicate:
    return c._where_predicate(ctx.repo, term, ctx.keys, ctx.path)


def _dataid_set(term: dict[str, Any], ctx: TermContext) -> Predicate:
    return c._set_predicate(ctx.user, ctx.repo, term, ctx.keys, ctx.path)


def _pin_version(term: dict[str, Any], predicate: Predicate) -> None:
    term["version"] = predicate.resolved["version"]


def _tag_table(term: dict[str, Any], ctx: TermContext) -> Predicate:
    return c._tag_predicate(ctx.user, ctx.repo, term, ctx.keys, ctx.path)


def _flags(term: dict[str, Any], ctx: TermContext) -> Predicate:
    return c._flag_predicate(term, ctx.path)


def _bad_data(term: dict[str, Any], ctx: TermContext) -> Predicate:
    return c.bad_data_predicate(term, ctx.keys, ctx.path)


def _describe_set(term: dict[str, Any]) -> str:
    version = f" v{term['version']}" if term.get("version") else " (latest version)"
    return f"DataID set {term['dataid_set']}{version}"


def _describe_table(term: dict[str, Any]) -> str:
    condition = f" where {term['condition']}" if term.get("condition") else ""
    return f"rows of tag table {term['tag_table']}{condition}"


BUILTIN = (
    TermKind("where", "where expression", r.clean_where, lambda t: f"data IDs where {t['where']}", _where),
    TermKind(
        "dataid_set", "DataID set", r.clean_dataid_set, _describe_set, _dataid_set, ("version",), pin=_pin_version
    ),
    TermKind("tag_table", "tag table", r.clean_tag_table, _describe_table, _tag_table, ("condition",)),
    TermKind(
        "flags",
        "flags",
        r.clean_flags,
        lambda t: f"exposures with a valid {' or '.join(t['flags'])} flag",
        _flags,
        default_mode="exclude",
    ),
    TermKind(
        "bad_data",
        "bad data",
        r.clean_bad_data,
        lambda t: f"data IDs in the bad-data register with status {' or '.join(t['bad_data'])}",
        _bad_data,
        default_mode="exclude",
    ),
)


def register() -> None:
    for kind in BUILTIN:
        register_term_kind(kind)
