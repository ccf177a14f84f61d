"""The error summary of a campaign: its failed quanta grouped by task and by message pattern.

A pattern is the error rule that matched the failures, or, for failures no rule matched, the message with its
numbers and quoted words blanked out (``Injected failure in step1 for data ID {detector=#,exposure=#,...}``), so
that one cause failing on many data IDs is one line. Each line says how many, first and last seen, example data
IDs, and (unmatched ones) a regular expression for a new error rule. Grouped in SQL: the cost does not grow with
the number of failures, only with the number of distinct patterns (at most ``PATTERN_LIMIT`` are listed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import CharField, Count, F, Func, Max, Min, QuerySet, Value
from django.db.models.functions import Left

from .models import Campaign, QuantumError

PATTERN_LIMIT = 100  # patterns listed (the most frequent first)
TASK_LIMIT = 100
MESSAGE_CHARS = 300  # the start of a message that makes its pattern
NUMBER = "#"
QUOTED = "'…'"


@dataclass
class FailureLine:
    """One line of the summary: failures of one task (or one pattern), how many, when, examples."""

    task_label: str
    exception_type: str
    count: int
    groups: int
    first_seen: datetime
    last_seen: datetime
    pattern: str = ""  # the normalised message, or the rule's regex
    rule_id: int | None = None
    rule_regex: str = ""
    rule_action: str = ""
    suggested_regex: str = ""
    examples: list[dict[str, Any]] = field(default_factory=list)  # {data_id, group_id, group, step, error_id}


@dataclass
class FailureSummary:
    by_task: list[FailureLine]
    by_pattern: list[FailureLine]
    total: int
    latest_only: bool
    more_patterns: int = 0


def _regexp_replace(expression: Any, pattern: str, replacement: str) -> Func:
    # PostgreSQL has it; core.sqlite_functions registers it on SQLite.
    return Func(
        expression, Value(pattern), Value(replacement), Value("g"), function="regexp_replace", output_field=CharField()
    )


def _normalised_message() -> Func:
    """SQL: the first ``MESSAGE_CHARS`` characters of the message, quoted words and numbers blanked out."""
    quoted = _regexp_replace(Left("message", MESSAGE_CHARS), "'[^']*'", QUOTED)
    return _regexp_replace(quoted, "[0-9]+", NUMBER)


def suggested_regex(normalised: str) -> str:
    """A regular expression matching the messages of a pattern (its first line): blanks become wildcards."""
    first = normalised.strip().splitlines()[0] if normalised.strip() else ""
    first = first[:200]
    parts = re.split(f"({re.escape(NUMBER)}|{re.escape(QUOTED)})", first)
    out = []
    for part in parts:
        if part == NUMBER:
            out.append(r"\d+")
        elif part == QUOTED:
            out.append(r"'[^']*'")
        else:
            out.append(re.escape(part))
    return "".join(out)


def data_id_text(data_id: Any) -> str:
    """``detector 1, exposure 2025112100151`` (the instrument left out: a campaign has one)."""
    if not isinstance(data_id, dict) or not data_id:
        return "no data ID"
    return ", ".join(f"{key} {value}" for key, value in data_id.items() if key != "instrument") or str(data_id)


def _errors(campaign: Campaign, latest_only: bool) -> QuerySet[QuantumError]:
    errors = QuantumError.objects.filter(submission__group__step__campaign=campaign)
    if latest_only:
        # Each group's latest attempt: what a retry or rescue fixed since is history, not a count.
        errors = errors.filter(submission__number=F("submission__group__attempts"))
    return errors


def _examples(wanted: list[tuple[FailureLine, list[int]]]) -> None:
    """Fill each line's examples (its first and last failure) in one query."""
    ids = sorted({pk for _, pks in wanted for pk in pks})
    rows = {
        row["pk"]: row
        for row in QuantumError.objects.filter(pk__in=ids).values(
            "pk", "data_id", "submission__group_id", "submission__group__name", "submission__group__step__name"
        )
    }
    for line, pks in wanted:
        for pk in dict.fromkeys(pks):
            row = rows.get(pk)
            if row is not None:
                line.examples.append(
                    {
                        "error_id": pk,
                        "data_id": row["data_id"],
                        "text": data_id_text(row["data_id"]),
                        "group_id": row["submission__group_id"],
                        "group": row["submission__group__name"],
                        "step": row["submission__group__step__name"],
                    }
                )


def failure_summary(*, campaign: Campaign, latest_only: bool = True) -> FailureSummary:
    """Failures of ``campaign`` by task and by message pattern (three queries, four with more than
    ``PATTERN_LIMIT`` patterns; see the module's docstring)."""
    errors = _errors(campaign, latest_only)
    aggregates = {
        "n": Count("pk"),
        "groups": Count("submission__group", distinct=True),
        "first": Min("created"),
        "last": Max("created"),
        "first_pk": Min("pk"),
        "last_pk": Max("pk"),
    }
    by_task: list[FailureLine] = []
    wanted: list[tuple[FailureLine, list[int]]] = []
    by_count: list[Any] = ["-n", "task_label"]  # "n" is one of the aggregates (mypy cannot see it)
    task_rows: list[dict[str, Any]] = [
        dict(row)
        for row in errors.values("task_label", "exception_type").annotate(**aggregates).order_by(*by_count)[:TASK_LIMIT]
    ]
    for row in task_rows:
        by_task.append(
            FailureLine(
                task_label=row["task_label"],
                exception_type=row["exception_type"],
                count=row["n"],
                groups=row["groups"],
                first_seen=row["first"],
                last_seen=row["last"],
            )
        )
        wanted.append((by_task[-1], [row["first_pk"], row["last_pk"]]))

    pattern_rows: list[dict[str, Any]] = [
        dict(row)
        for row in errors.annotate(pattern=_normalised_message())
        .values("task_label", "exception_type", "rule_id", "rule__message_regex", "action", "pattern")
        .annotate(**aggregates)
        .order_by(*by_count, "pattern")[: PATTERN_LIMIT + 1]
    ]
    more = 0
    if len(pattern_rows) > PATTERN_LIMIT:
        more = (
            errors.annotate(pattern=_normalised_message())
            .values("task_label", "exception_type", "rule_id", "action", "pattern")
            .distinct()
            .count()
            - PATTERN_LIMIT
        )
        pattern_rows = pattern_rows[:PATTERN_LIMIT]
    by_pattern: list[FailureLine] = []
    for row in pattern_rows:
        pattern = row["pattern"] or ""
        by_pattern.append(
            FailureLine(
                task_label=row["task_label"],
                exception_type=row["exception_type"],
                count=row["n"],
                groups=row["groups"],
                first_seen=row["first"],
                last_seen=row["last"],
                pattern=pattern,
                rule_id=row["rule_id"],
                rule_regex=row["rule__message_regex"] or "",
                rule_action=row["action"] or "",
                suggested_regex="" if row["rule_id"] else suggested_regex(pattern),
            )
        )
        wanted.append((by_pattern[-1], [row["first_pk"], row["last_pk"]]))
    _examples(wanted)
    total = sum(line.count for line in by_task)
    return FailureSummary(
        by_task=by_task, by_pattern=by_pattern, total=total, latest_only=latest_only, more_patterns=more
    )
