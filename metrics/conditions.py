"""Metric conditions: quality gates (``psf_fwhm median < 1.1``) and metric-conditioned step inputs.

Pure functions: parsing and checking what a campaign definition says, and computing statistics over a
list of values. No database access, so the definition checks and the arithmetic are tested without one.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
GATE_FIELDS = ("metric", "statistic", "op", "threshold")
INPUT_FIELDS = ("step", "metric", "statistic", "op", "threshold", "per")
# What a metric-conditioned input selects: one data ID per ...
PER_CHOICES = {
    "visit": ("instrument", "visit"),
    "exposure": ("instrument", "exposure"),
    "detector": ("instrument", "exposure", "detector"),
}
_PERCENTILE = re.compile(r"^p([1-9][0-9]?)$")
_FRACTION = re.compile(r"^fraction_(below|above):(-?[0-9.eE+-]+)$")
_METRIC = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$")
STATISTICS_HELP = "median, mean, min, max, count, p10..p99, fraction_below:X or fraction_above:X"
# The same set as a regular expression, for the API schema.
STATISTIC_PATTERN = r"^(median|mean|min|max|count|p[1-9][0-9]?|fraction_(below|above):-?[0-9.eE+-]+)$"

AddError = Callable[[str, str], None]


def check_statistic(name: str) -> str | None:
    """None if ``name`` is a known statistic, else a message saying which are."""
    if name in ("median", "mean", "min", "max", "count") or _PERCENTILE.match(name) or _FRACTION.match(name):
        return None
    return f"Unknown statistic {name!r}; use one of: {STATISTICS_HELP}."


def statistic(name: str, values: Sequence[float]) -> float | None:
    """The statistic ``name`` of ``values`` (nulls already left out); None when there is nothing to measure."""
    if name == "count":
        return float(len(values))
    if not values:
        return None
    ordered = sorted(values)
    n = len(ordered)
    if name == "min":
        return ordered[0]
    if name == "max":
        return ordered[-1]
    if name == "mean":
        return math.fsum(ordered) / n
    if name == "median":
        mid = n // 2
        return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    match = _PERCENTILE.match(name)
    if match:
        # Linear interpolation between closest ranks (numpy's default).
        rank = int(match.group(1)) / 100 * (n - 1)
        low = math.floor(rank)
        high = min(low + 1, n - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
    match = _FRACTION.match(name)
    if match:
        limit = float(match.group(2))
        hits = sum(1 for v in ordered if (v < limit if match.group(1) == "below" else v > limit))
        return hits / n
    raise ValueError(check_statistic(name))


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return float(value) if math.isfinite(float(value)) else None
        except OverflowError:  # an integer beyond a double
            return None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def parse_gate_text(text: str) -> dict[str, Any] | str:
    """``"psf_fwhm median < 1.1"`` (statistic optional, default median) → dict, or an error message."""
    parts = text.split()
    if len(parts) == 3 and parts[1] in OPERATORS:
        parts.insert(1, "median")
    if len(parts) != 4 or parts[2] not in OPERATORS:
        return f"{text!r} is not 'METRIC [STATISTIC] OP THRESHOLD', e.g. 'psf_fwhm median < 1.1'."
    metric, stat, op, threshold = parts
    return {"metric": metric, "statistic": stat, "op": op, "threshold": threshold}


def _condition(value: Mapping[str, Any], key: str, add: AddError, *, default_statistic: str) -> dict[str, Any]:
    metric = value.get("metric")
    if not isinstance(metric, str) or not metric.strip():
        add(f"{key}.metric", "A metric name is required, e.g. 'psf_fwhm' or 'psfMetrics.psf_fwhm'.")
        metric = ""
    elif not _METRIC.match(metric.strip()) or len(metric.strip()) > 200:
        add(f"{key}.metric", f"{metric!r} is not a metric name (letters, digits, '_', '.', ':' and '-').")
    stat = value.get("statistic") or default_statistic
    if not isinstance(stat, str) or check_statistic(stat) is not None:
        add(f"{key}.statistic", check_statistic(str(stat)) or "Must be text.")
    op = value.get("op")
    if op not in OPERATORS:
        add(f"{key}.op", f"{op!r} is not one of: {', '.join(OPERATORS)}.")
    threshold = _number(value.get("threshold"))
    if threshold is None:
        add(f"{key}.threshold", f"Must be a finite number, got {value.get('threshold')!r}.")
    return {"metric": str(metric).strip(), "statistic": stat, "op": op, "threshold": threshold}


def clean_gates(value: Any, key: str, add: AddError) -> list[dict[str, Any]]:
    """A step's ``quality_gates``: a list of mappings or of texts like ``"psf_fwhm median < 1.1"``."""
    if value in (None, "", []):
        return []
    if not isinstance(value, list | tuple):
        add(key, "Must be a list of gates such as 'psf_fwhm median < 1.1'.")
        return []
    out = []
    for i, gate in enumerate(value):
        at = f"{key}[{i}]"
        if isinstance(gate, str):
            parsed = parse_gate_text(gate)
            if isinstance(parsed, str):
                add(at, parsed)
                continue
            gate = parsed
        if not isinstance(gate, Mapping):
            add(at, "Must be a mapping (metric, statistic, op, threshold) or a text such as 'psf_fwhm median < 1.1'.")
            continue
        for field in gate:
            if field not in GATE_FIELDS:
                add(f"{at}.{field}", f"Unknown key; allowed: {', '.join(GATE_FIELDS)}.")
        out.append(_condition(gate, at, add, default_statistic="median"))
    return out


def clean_metric_input(value: Any, key: str, add: AddError, *, earlier_steps: Sequence[str]) -> dict[str, Any]:
    """A step's ``metric_input``: the data IDs of an earlier step whose metric passes a condition."""
    if value in (None, "", {}):
        return {}
    if not isinstance(value, Mapping):
        add(key, "Must be a mapping with keys " + ", ".join(INPUT_FIELDS) + ".")
        return {}
    for field in value:
        if field not in INPUT_FIELDS:
            add(f"{key}.{field}", f"Unknown key; allowed: {', '.join(INPUT_FIELDS)}.")
    step = value.get("step")
    if not isinstance(step, str) or not step.strip():
        add(f"{key}.step", "Name the upstream step whose metrics decide, e.g. 'step1'.")
        step = ""
    elif step not in earlier_steps:
        add(f"{key}.step", f"{step!r} is not a step this one depends on; add it to depends_on.")
    per = value.get("per") or "visit"
    if per not in PER_CHOICES:
        add(f"{key}.per", f"{per!r} is not one of: {', '.join(PER_CHOICES)}.")
    out = {"step": str(step).strip(), **_condition(value, key, add, default_statistic="median"), "per": per}
    return out


def gate_text(gate: Mapping[str, Any]) -> str:
    return f"{gate['metric']} {gate['statistic']} {gate['op']} {_fmt(gate['threshold'])}"


def input_text(cond: Mapping[str, Any]) -> str:
    return (
        f"{cond['per']}s whose {cond['step']} {cond['metric']} {cond['statistic']} {cond['op']} "
        f"{_fmt(cond['threshold'])}"
    )


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def passes(measured: float | None, op: str, threshold: float) -> bool:
    """Whether ``measured op threshold``; nothing measured never passes."""
    return measured is not None and OPERATORS[op](measured, threshold)


def parse_input_text(text: str) -> dict[str, Any] | str:
    """``"step1: psf_fwhm median < 1.2 per visit"`` (statistic and ``per`` optional) → dict, or an error message."""
    step, sep, rest = text.partition(":")
    if not sep or not step.strip():
        return f"{text!r} is not 'STEP: METRIC [STATISTIC] OP THRESHOLD [per visit|exposure|detector]'."
    parts = rest.split()
    per = "visit"
    if len(parts) >= 2 and parts[-2] == "per":
        per, parts = parts[-1], parts[:-2]
    gate = parse_gate_text(" ".join(parts))
    if isinstance(gate, str):
        return f"{text!r} is not 'STEP: METRIC [STATISTIC] OP THRESHOLD [per visit|exposure|detector]'."
    return {"step": step.strip(), **gate, "per": per}


def input_form_text(cond: Mapping[str, Any]) -> str:
    """The one-line form of a metric-conditioned input (what ``parse_input_text`` reads)."""
    return (
        f"{cond['step']}: {cond['metric']} {cond['statistic']} {cond['op']} {_fmt(cond['threshold'])} per {cond['per']}"
    )
