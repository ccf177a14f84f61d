"""The registry of selection term kinds: what a recipe term may be, how it is checked, described and compiled.

A term kind is named by the key that a recipe term carries (``{"where": ...}``, ``{"tag_table": ...}``);
its ``clean`` reads the raw term and reports problems by path, its ``describe`` says in words what it
selects, its ``compile`` turns it into a SQL predicate over the registry mirror (``e`` exposures, ``d``
detectors). The kinds of this app (where, DataID sets, tag tables, flags, bad data) are registered in
``TaggingConfig.ready``; a higher layer registers its own in its ``AppConfig.ready`` (the metrics app adds
``metric``), so this package never imports it. A sample may likewise be stratified by a value that a
higher layer provides (``register_stratifier``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..models import ButlerRepo


@dataclass
class Predicate:
    """A term compiled: SQL over the mirror's aliases (``e``, ``d``) and its parameters. ``resolved`` is what
    the term's names resolved to (ids, versions), for provenance; ``engine`` says who answered it."""

    sql: str
    params: list[Any]
    label: str
    engine: str = "mirror"  # or "butler" for a where expression the Butler answered
    resolved: dict[str, Any] = field(default_factory=dict)
    exclude: bool = False


@dataclass(frozen=True)
class TermContext:
    """What a term is compiled for: who asks (permissions), the repo, the selection's key columns
    (``instrument``, ``exposure`` or ``visit``, maybe ``detector``) and the term's path (``terms[2]``)."""

    user: Any
    repo: ButlerRepo
    keys: list[str]
    path: str


class ProblemSink:
    """Where ``clean`` reports what is wrong with a term (``recipe._Problems`` is one)."""

    def add(self, path: str, message: str) -> None:  # pragma: no cover - an interface
        raise NotImplementedError


@dataclass(frozen=True)
class TermKind:
    """One kind of recipe term.

    - ``clean(raw, path, problems)``: the kind's own fields, validated (defaults filled in); problems are
      reported by path (``terms[2].threshold``) and never raised.
    - ``describe(term)``: what it matches, in words, after "Include"/"Exclude" ("data IDs where ...").
    - ``compile(term, context)``: the SQL predicate; raises ``Http404`` (naming the term) for an object the
      user may not see and ``RecipeError`` for a name that does not resolve.
    - ``pin(term, predicate)``: what a frozen recipe records so that a re-run repeats it (a set version).
    - ``choices(user)``: what the builder page offers for it (JSON-able).
    """

    name: str
    label: str
    clean: Callable[[dict[str, Any], str, ProblemSink], dict[str, Any]]
    describe: Callable[[dict[str, Any]], str]
    compile: Callable[[dict[str, Any], TermContext], Predicate]
    keys: tuple[str, ...] = ()  # keys a term may have beside its name, mode, label and kind
    default_mode: str = "include"  # what the builder page starts a new term with (a recipe's default is include)
    pin: Callable[[dict[str, Any], Predicate], None] | None = None
    choices: Callable[[Any], Any] | None = None


# A sample stratified by ``{key: ...}``: (SQL of the stratum value per data ID, parameters).
Stratifier = Callable[[Any, "ButlerRepo", dict[str, Any], list[str]], tuple[str, list[Any]]]

_KINDS: dict[str, TermKind] = {}
_STRATIFIERS: dict[str, Stratifier] = {}


def register_term_kind(kind: TermKind) -> None:
    """Add a kind (again: replaced, so a reloaded app does not fail)."""
    _KINDS[kind.name] = kind


def term_kind(name: str) -> TermKind | None:
    return _KINDS.get(name)


def term_kinds() -> list[TermKind]:
    """Every registered kind, in the order they were registered (this app's first)."""
    return list(_KINDS.values())


def register_stratifier(key: str, stratifier: Stratifier) -> None:
    _STRATIFIERS[key] = stratifier


def stratifier(key: str) -> Stratifier | None:
    return _STRATIFIERS.get(key)
