"""Rollups of the metric values, so that the dashboards never read a million values to draw a campaign.

For each (campaign, metric) three tables hold, per step, band and night (every filter of the explorer but
detector and value range):

- ``MetricExposureRollup``: count, sum, min and max per exposure (or visit): the time series, the sky map and
  the campaign's range;
- ``MetricDetectorRollup``: count and sum per detector: the focal plane;
- ``MetricHistogramRollup``: counts in fine bins ``[bin, bin + 1) * 10**grid``, where ``grid`` (in
  ``MetricRollupState``) gives 100 to 1,000 bins over the (campaign, metric)'s range. The explorer's histogram
  merges whole fine bins, so the rollup and the values give the same counts (see ``selectors``).

A fourth, ``MetricPairIndex``, holds its values as packed columns sorted by a hash of the data ID, for the
A-against-B comparison (``pairs``).

They are recomputed from the values in SQL, a whole (campaign, metric) at a time: ingest marks the
(campaign, metric)s of each batch dirty in the batch's own transaction and refreshes them when it ends
(``refresh_dirty``); a dashboard read refreshes any (campaign, metric) that is dirty or has values newer than
its rollups (values stored without the ingest, e.g. by ``COPY``) before it reads (``ensure_fresh``); the
``metrics_rollups_rebuild`` command recomputes them all. PostgreSQL only (as are the dashboards' queries).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from . import pairs
from .models import (
    MetricDetectorRollup,
    MetricExposureRollup,
    MetricHistogramRollup,
    MetricPairIndex,
    MetricRollupState,
    MetricValue,
)

MV = MetricValue._meta.db_table
STATE = MetricRollupState._meta.db_table
EXPOSURE = MetricExposureRollup._meta.db_table
DETECTOR = MetricDetectorRollup._meta.db_table
HISTOGRAM = MetricHistogramRollup._meta.db_table
FINE_BINS = 2  # the grid is 10**(floor(log10(range)) - FINE_BINS): 100 to 1,000 fine bins over the range


def grid_of(low: float | None, high: float | None) -> int | None:
    """The exponent of the fine bin width for finite values in [low, high] (None when there is none).

    The bin index ``floor(value / 10**grid)`` stays well inside a bigint: the grid is never finer than
    1e-12 of the largest magnitude."""
    if low is None or high is None:
        return None
    magnitude = max(abs(low), abs(high))
    if high > low:
        return max(math.floor(math.log10(high - low)) - FINE_BINS, math.floor(math.log10(magnitude)) - 12)
    if magnitude > 0:
        return math.floor(math.log10(magnitude)) - FINE_BINS
    return -FINE_BINS


def bin_width(grid: int) -> float:
    """The fine bin width as the one float both the rollup and the raw path divide by."""
    return float(10.0**grid)


def mark_dirty_sql(source: str) -> str:
    """SQL marking the (campaign, metric)s present in table ``source`` dirty (run in the ingest batch's
    transaction: a dashboard that reads meanwhile recomputes them, and waits for the batch to commit)."""
    return (
        f"INSERT INTO {STATE} (campaign_id, metric, dirty, newest) "  # noqa: S608 - fixed names
        f"SELECT DISTINCT campaign_id, metric, true, 0 FROM {source} WHERE campaign_id IS NOT NULL "
        "ORDER BY 1, 2 "
        "ON CONFLICT ON CONSTRAINT metricrollupstate_unique DO UPDATE SET dirty = true"
    )


def refresh(campaign_id: int, metric: str) -> int | None:
    """Recompute the rollups of one (campaign, metric) from its values, in one transaction. Returns the grid."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute("SET LOCAL jit = off")
        # Lock the state row first: an ingest batch of this (campaign, metric) that commits meanwhile marks it
        # dirty again after this transaction, never before (its ON CONFLICT UPDATE waits for the lock).
        cursor.execute(
            f"INSERT INTO {STATE} (campaign_id, metric, dirty, newest) VALUES (%s, %s, true, 0) "  # noqa: S608
            "ON CONFLICT ON CONSTRAINT metricrollupstate_unique DO UPDATE SET dirty = true",
            [campaign_id, metric],
        )
        cursor.execute(f"SELECT max(id) FROM {MV} WHERE campaign_id = %s", [campaign_id])  # noqa: S608
        newest = cursor.fetchone()[0] or 0
        key: list[Any] = [campaign_id, metric]
        for table in (EXPOSURE, DETECTOR, HISTOGRAM):
            cursor.execute(f"DELETE FROM {table} WHERE campaign_id = %s AND metric = %s", key)  # noqa: S608
        cursor.execute(
            f"INSERT INTO {EXPOSURE} (campaign_id, metric, instrument, exposure, step_id, band, day_obs, "  # noqa: S608
            "rows, n, total, low, high) "
            "SELECT campaign_id, metric, instrument, COALESCE(exposure, visit), step_id, band, day_obs, "
            "count(*), count(value), sum(value), min(value), max(value) "
            f"FROM {MV} WHERE campaign_id = %s AND metric = %s GROUP BY 1, 2, 3, 4, 5, 6, 7",
            key,
        )
        cursor.execute(
            f"INSERT INTO {DETECTOR} (campaign_id, metric, instrument, detector, step_id, band, day_obs, n, total) "  # noqa: S608
            "SELECT campaign_id, metric, instrument, detector, step_id, band, day_obs, count(value), sum(value) "
            f"FROM {MV} WHERE campaign_id = %s AND metric = %s GROUP BY 1, 2, 3, 4, 5, 6, 7",
            key,
        )
        cursor.execute(
            f"SELECT min(low), max(high) FROM {EXPOSURE} WHERE campaign_id = %s AND metric = %s",  # noqa: S608
            key,
        )
        grid = grid_of(*cursor.fetchone())
        if grid is not None:
            cursor.execute(
                f"INSERT INTO {HISTOGRAM} (campaign_id, metric, step_id, band, day_obs, bin, n) "  # noqa: S608
                "SELECT campaign_id, metric, step_id, band, day_obs, floor(value / %s)::bigint, count(*) "
                f"FROM {MV} WHERE campaign_id = %s AND metric = %s AND value IS NOT NULL "
                "GROUP BY 1, 2, 3, 4, 5, 6",
                [bin_width(grid), *key],
            )
        build_pair_index(campaign_id, metric)
        cursor.execute(
            f"UPDATE {STATE} SET dirty = false, newest = %s, grid = %s, refreshed = %s "  # noqa: S608
            "WHERE campaign_id = %s AND metric = %s",
            [newest, grid, timezone.now(), *key],
        )
    return grid


def build_pair_index(campaign_id: int, metric: str) -> int | None:
    """(Re)build the pair index of one (campaign, metric) (``metrics.pairs``), in the caller's transaction,
    after its exposure rollup, which names its bands. Returns how many values it holds (None: too many)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT band FROM {EXPOSURE} WHERE campaign_id = %s AND metric = %s AND band IS NOT NULL "  # noqa: S608
            "ORDER BY 1",
            [campaign_id, metric],
        )
        bands = [band for (band,) in cursor.fetchall()]
    return pairs.build(campaign_id, metric, bands)


def ensure_pair_indexes(campaign_ids: list[int], metric: str) -> None:
    """Build the pair indexes of ``metric`` that fresh rollups lack (rollups refreshed before pair indexes
    existed, an index built by another hash function, or a (campaign, metric) too large for one). Call after
    ``ensure_fresh``."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT campaign_id FROM {pairs.PAIRS} WHERE campaign_id = ANY(%s) AND metric = %s "  # noqa: S608
            "AND probe = hashtextextended(%s, 0)",
            [list(campaign_ids), metric, pairs.PROBE_TEXT],
        )
        found = {campaign_id for (campaign_id,) in cursor.fetchall()}
    for campaign_id in dict.fromkeys(campaign_ids):
        if campaign_id not in found:
            with transaction.atomic():
                build_pair_index(campaign_id, metric)


def refresh_dirty(keys: Iterable[tuple[int, str]] | None = None) -> int:
    """Refresh the dirty (campaign, metric)s (among ``keys`` if given). Returns how many were refreshed."""
    found = MetricRollupState.objects.filter(dirty=True).values_list("campaign_id", "metric")
    wanted = set(keys) if keys is not None else None
    done = 0
    for campaign_id, metric in sorted(found):
        if wanted is None or (campaign_id, metric) in wanted:
            refresh(campaign_id, metric)
            done += 1
    if done:
        analyze()
    return done


def analyze() -> None:
    """Fresh planner statistics of the rollup tables (a refresh may replace most of their rows)."""
    with connection.cursor() as cursor:
        for table in (EXPOSURE, DETECTOR, HISTOGRAM):
            cursor.execute(f"ANALYZE {table}")


def ensure_fresh(campaign_ids: list[int], metric: str) -> dict[int, int | None]:
    """Refresh the rollups of ``metric`` in these campaigns where they are missing, dirty, or older than the
    campaign's newest value; return each campaign's histogram grid. One small query when all are current."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT c.id, s.dirty, s.newest, s.grid, (SELECT max(id) FROM {MV} WHERE campaign_id = c.id) "  # noqa: S608
            f"FROM unnest(%s::bigint[]) AS c(id) LEFT JOIN {STATE} s ON s.campaign_id = c.id AND s.metric = %s",
            [list(campaign_ids), metric],
        )
        rows = cursor.fetchall()
    grids: dict[int, int | None] = {}
    for campaign_id, dirty, newest, grid, newest_now in rows:
        if dirty is None or dirty or (newest_now or 0) > newest:
            grid = refresh(campaign_id, metric)
        grids[campaign_id] = grid
    return grids


def rebuild(campaign_ids: Iterable[int] | None = None) -> int:
    """Recompute the rollups of every (campaign, metric) with values (of the given campaigns, if any), and
    drop those of (campaign, metric)s that have none left. Returns how many were recomputed."""
    ids = list(campaign_ids) if campaign_ids is not None else None
    with connection.cursor() as cursor:
        # A loose index scan of (campaign, metric): one probe per distinct pair.
        cursor.execute(
            f"""
            WITH RECURSIVE k(campaign_id, metric) AS (
                (SELECT campaign_id, metric FROM {MV} WHERE campaign_id IS NOT NULL
                  ORDER BY campaign_id, metric LIMIT 1)
                UNION ALL
                SELECT n.campaign_id, n.metric FROM k, LATERAL (
                    SELECT campaign_id, metric FROM {MV}
                     WHERE (campaign_id, metric) > (k.campaign_id, k.metric) AND campaign_id IS NOT NULL
                     ORDER BY campaign_id, metric LIMIT 1) n
            )
            SELECT campaign_id, metric FROM k
            """  # noqa: S608 - table name only
        )
        keys = [(c, m) for c, m in cursor.fetchall() if ids is None or c in ids]
    present = set(keys)
    stale = MetricRollupState.objects.all() if ids is None else MetricRollupState.objects.filter(campaign_id__in=ids)
    for state in stale:
        if (state.campaign_id, state.metric) not in present:
            with transaction.atomic():
                for model in (MetricExposureRollup, MetricDetectorRollup, MetricHistogramRollup, MetricPairIndex):
                    model.objects.filter(campaign_id=state.campaign_id, metric=state.metric).delete()
                state.delete()
    for campaign_id, metric in keys:
        refresh(campaign_id, metric)
    analyze()
    return len(keys)
