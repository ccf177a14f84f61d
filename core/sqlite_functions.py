"""SQL functions PostgreSQL has and SQLite lacks, registered on every SQLite connection.

``make run`` serves the app on SQLite (see README); PostgreSQL is the production and fast path. With
these, a few queries keep one SQL text on both databases: ``percentile_cont`` (an aggregate taking the
fraction first, as ``percentile_cont(f, value)``: see ``metrics.services._aggregate``), ``width_bucket``
and ``LEAST``/``GREATEST`` with PostgreSQL's NULL handling (NULLs are ignored), and ``regexp_replace`` (for
the constant patterns of ``campaigns.selectors_failures``; flag ``g`` replaces every match, else the first).
"""

from __future__ import annotations

import math
import re
from typing import Any

from django.db.backends.signals import connection_created
from django.dispatch import receiver


def percentile(fraction: float, values: list[float]) -> float | None:
    """PostgreSQL's ``percentile_cont``: linear interpolation between the closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    rank = fraction * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class _PercentileCont:
    def __init__(self) -> None:
        self.fraction = 0.5
        self.values: list[float] = []

    def step(self, fraction: float, value: Any) -> None:
        self.fraction = float(fraction)
        if value is not None:
            self.values.append(float(value))

    def finalize(self) -> float | None:
        return percentile(self.fraction, self.values)


def width_bucket(value: float | None, lo: float, hi: float, count: int) -> int | None:
    """PostgreSQL's ``width_bucket``: 0 below ``lo``, ``count + 1`` at or above ``hi``, else 1..count."""
    if value is None or lo is None or hi is None or count is None:
        return None
    if value < lo:
        return 0
    if value >= hi:
        return int(count) + 1
    return int((value - lo) / (hi - lo) * count) + 1


def _least(*values: Any) -> Any:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _greatest(*values: Any) -> Any:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def regexp_replace(text: str | None, pattern: str, replacement: str, flags: str = "") -> str | None:
    """PostgreSQL's ``regexp_replace(text, pattern, replacement, flags)`` for the flags ``g`` (every match)."""
    if text is None or pattern is None:
        return None
    return re.sub(pattern, replacement, text, count=0 if "g" in (flags or "") else 1)


@receiver(connection_created)
def register_sqlite_functions(sender, connection, **kwargs) -> None:
    if connection.vendor != "sqlite":
        return
    raw = connection.connection
    raw.create_aggregate("percentile_cont", 2, _PercentileCont)
    raw.create_function("width_bucket", 4, width_bucket, deterministic=True)
    raw.create_function("least", -1, _least, deterministic=True)
    raw.create_function("greatest", -1, _greatest, deterministic=True)
    raw.create_function("regexp_replace", 4, regexp_replace, deterministic=True)
