"""Reads of the metrics app: permission-checked campaigns and metric aggregations computed in SQL.

Dashboards never load metric rows into Python: the explorer reads the rollups of ``rollups`` (per exposure,
per detector, per fine histogram bin), or the values themselves under a detector or value-range filter, with
the same bins; where points are drawn they are thinned to a cap in SQL. So a campaign of a million metric
values answers with a few thousand numbers.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, DurationField, Exists, ExpressionWrapper, F, OuterRef, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.http import Http404

from campaigns.choices import GROUP_ACTIVE_STATES, GROUP_DONE_STATES, GroupStatus
from campaigns.models import Campaign, Group, GroupTransition, QuantumError, Submission

from . import pairs, portable, rollups
from .charts import DetectorCell, ExposurePoint, HistogramSeries, PairPoint, ProgressSeries, progress_series
from .filtersets import MetricValueFilterSet
from .models import GateResult, MetricValue, StepCheck, StepInputFreeze
from .selectors_exposure import ExposureCampaign as ExposureCampaign
from .selectors_exposure import ExposureProcessing as ExposureProcessing
from .selectors_exposure import exposure_processing as exposure_processing

MV = MetricValue._meta.db_table
HISTOGRAM_BINS = 60
POINT_CAP = 10_000  # points drawn per scatter (per-exposure aggregates, thinned evenly beyond this)
PAIR_CAP = 10_000  # data IDs drawn in the A-vs-B scatter
TOP_CHANGES = 50
OPERATORS = {"lt": "<", "gt": ">"}


# --- which campaigns -----------------------------------------------------------------------------------------


def dashboard_campaigns(*, user, ids: list[int]) -> list[Campaign]:
    """The campaigns ``ids`` in the given order, each of which ``user`` may view; 404 if any is not."""
    if not ids:
        return []
    found = {c.pk: c for c in Campaign.objects.restrict(user, "view").filter(pk__in=ids).select_related("butler_repo")}
    missing = [i for i in ids if i not in found]
    if missing:
        raise Http404("No such campaign.")
    return [found[i] for i in dict.fromkeys(ids)]


def explorer_campaign_choices(*, user) -> list[Campaign]:
    """Campaigns the user may view that have metric values, newest first."""
    # EXISTS probes the (campaign, metric) index once per campaign instead of reading every value.
    return list(
        Campaign.objects.restrict(user, "view")
        .filter(Exists(MetricValue.objects.filter(campaign_id=OuterRef("pk"))))
        .only("pk", "name", "status", "butler_repo_id")
        .order_by("-updated")[:500]
    )


def campaign_metric_names(*, campaign_ids: list[int]) -> list[tuple[str, str]]:
    """(metric, unit) measured in the campaigns, by a loose index scan of (campaign, metric): one index
    probe per distinct metric instead of reading every value."""
    if connection.vendor != "postgresql":  # SQLite (make run): the portable twin
        return portable.campaign_metric_names(campaign_ids=campaign_ids)
    if not campaign_ids:
        return []
    sql = f"""
        WITH RECURSIVE m(campaign_id, metric) AS (
            SELECT c.id, (SELECT min(metric) FROM {MV} WHERE campaign_id = c.id)
              FROM unnest(%s::bigint[]) AS c(id)
            UNION ALL
            SELECT m.campaign_id, (SELECT min(metric) FROM {MV} WHERE campaign_id = m.campaign_id AND metric > m.metric)
              FROM m WHERE m.metric IS NOT NULL
        )
        SELECT DISTINCT m.metric,
               (SELECT unit FROM {MV} u WHERE u.campaign_id = m.campaign_id AND u.metric = m.metric LIMIT 1)
          FROM m WHERE m.metric IS NOT NULL ORDER BY 1
    """  # noqa: S608 - table name only
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(campaign_ids)])
        seen: dict[str, str] = {}
        for metric, unit in cursor.fetchall():
            seen.setdefault(metric, unit or "")
    return sorted(seen.items())


def most_measured_metric(*, campaign_ids: list[int]) -> tuple[str, int] | None:
    """(metric, number of finite values) of the metric measured most in the campaigns: what the explorer opens on when
    nobody chose one. Read from the per-exposure rollups the ingest keeps (tens of thousands of rows for a
    million values); from the values themselves for campaigns without rollups yet."""
    from .models import MetricExposureRollup

    if not campaign_ids:
        return None
    counted = (
        MetricExposureRollup.objects.filter(campaign_id__in=campaign_ids)
        .values_list("metric")
        .annotate(n=Sum("n"))
        .order_by("-n", "metric")
        .first()
    )
    if counted is None:
        counted = (
            MetricValue.objects.filter(campaign_id__in=campaign_ids)
            .values_list("metric")
            .annotate(n=Count("value"))
            .order_by("-n", "metric")
            .first()
        )
    return (counted[0], int(counted[1])) if counted else None


# --- one query of the explorer -------------------------------------------------------------------------------


@dataclass
class MetricQuery:
    """What the explorer shows: one metric of some campaigns, with optional filters."""

    campaigns: list[Campaign]
    metric: str
    band: str | None = None
    night_from: int | None = None
    night_to: int | None = None
    step: str | None = None
    detector: int | None = None
    value_min: float | None = None
    value_max: float | None = None

    @property
    def campaign_ids(self) -> list[int]:
        return [c.pk for c in self.campaigns]

    def filters(self) -> dict[str, Any]:
        """The filters as plain values (for a recipe, or a link)."""
        keys = ("band", "night_from", "night_to", "step", "detector", "value_min", "value_max")
        return {k: getattr(self, k) for k in keys if getattr(self, k) not in (None, "")}

    def where(self, alias: str = "mv", *, campaign_ids: list[int] | None = None) -> tuple[str, list[Any]]:
        """SQL condition and parameters selecting this query's values (column names are fixed here)."""
        ids = list(campaign_ids if campaign_ids is not None else self.campaign_ids)
        parts = [f"{alias}.campaign_id = ANY(%s)", f"{alias}.metric = %s"]
        params: list[Any] = [ids, self.metric]
        if self.band:
            parts.append(f"{alias}.band = %s")
            params.append(self.band)
        if self.night_from is not None:
            parts.append(f"{alias}.day_obs >= %s")
            params.append(self.night_from)
        if self.night_to is not None:
            parts.append(f"{alias}.day_obs <= %s")
            params.append(self.night_to)
        if self.step:
            steps = "SELECT id FROM campaigns_step WHERE campaign_id = ANY(%s) AND name = %s"
            parts.append(f"{alias}.step_id IN ({steps})")
            params += [ids, self.step]
        if self.detector is not None:
            parts.append(f"{alias}.detector = %s")
            params.append(self.detector)
        if self.value_min is not None:
            parts.append(f"{alias}.value >= %s")
            params.append(self.value_min)
        if self.value_max is not None:
            parts.append(f"{alias}.value <= %s")
            params.append(self.value_max)
        return " AND ".join(parts), params


def _fetch(sql: str, params: list[Any]) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


CACHE_SECONDS = 600


def data_stamp(campaign_ids: list[int]) -> list[Any]:
    """The newest metric value id of each campaign (one probe of the (campaign, id) index each) and when its
    rollups were last refreshed: new values change the first, values changed in place by an ingest the second,
    so cached aggregates are never older than the last ingest."""
    if connection.vendor != "postgresql":  # SQLite (make run): the portable twin
        return portable.data_stamp(list(campaign_ids))
    if not campaign_ids:
        return []
    rows = _fetch(
        f"SELECT c.id, (SELECT max(id) FROM {MV} WHERE campaign_id = c.id), "  # noqa: S608
        f"(SELECT max(refreshed) FROM {rollups.STATE} WHERE campaign_id = c.id) FROM unnest(%s::bigint[]) AS c(id)",
        [list(campaign_ids)],
    )
    return [[newest, refreshed] for _, newest, refreshed in rows]


def cached(name: str, query: MetricQuery, compute, **extra: Any):
    """``compute()`` cached by the query, ``extra`` and the campaigns' data stamp (Django's cache, 10 min).

    The stamp catches new values and values the ingest rewrote in place (it refreshes the rollups); a value
    rewritten in place some other way shows after at most 10 minutes."""
    from django.core.cache import cache

    key_data = [name, query.campaign_ids, query.metric, query.filters(), extra, data_stamp(query.campaign_ids)]
    key = "metrics:" + hashlib.sha1(json.dumps(key_data, sort_keys=True, default=str).encode()).hexdigest()  # noqa: S324
    found = cache.get(key)
    if found is None:
        found = compute()
        cache.set(key, found, CACHE_SECONDS)
    return found


def _edges(lo: float, hi: float, bins: int) -> list[float]:
    return [lo + (hi - lo) * i / bins for i in range(bins + 1)]


def difference_range(low: float, high: float) -> tuple[float, float]:
    """The span of the histogram of B − A: the differences' own, widened around a single value (as the
    SQL comparison's ``rr`` does)."""
    if high > low:
        return low, high
    return low - max(abs(low) * 0.05, 0.5), high + max(abs(high) * 0.05, 0.5)


def difference_histogram(
    label: str, span: tuple[float, float] | None, counts: list[int], nulls: int, bins: int
) -> HistogramSeries:
    """The histogram of B − A over ``span`` (None: no finite difference, an empty histogram)."""
    if span is None:
        return HistogramSeries(label, [0.0, 1.0], [0], nulls)
    return HistogramSeries(label, _edges(*span, bins), counts, nulls)


@dataclass
class ExplorerData:
    histogram: list[HistogramSeries]
    points: list[ExposurePoint]
    exposure_total: int
    detectors: dict[int, list[DetectorCell]]


def metric_explorer_data(
    *, query: MetricQuery, bins: int = HISTOGRAM_BINS, cap: int = POINT_CAP, use_cache: bool = True
) -> ExplorerData:
    """Everything the explorer draws, in two queries of the rollups (of the values under a detector or value
    filter), after refreshing stale rollups (cached, see ``cached``)."""
    if connection.vendor != "postgresql":  # SQLite (make run): the portable twin
        return portable.explorer_data(query, bins, cap)
    if not use_cache:
        return _explorer_data(query, bins, cap)
    return cached("explorer", query, lambda: _explorer_data(query, bins, cap), bins=bins, cap=cap)


def uses_rollups(query: MetricQuery) -> bool:
    """Whether the rollups answer the query: they are keyed by every filter but detector and value range; with
    those the explorer reads the values (the raw path)."""
    return query.detector is None and query.value_min is None and query.value_max is None


# Per exposure, per detector and per campaign, from the values in one scan (GROUPING SETS) ...
_RAW_AGG = f"""
    SELECT mv.campaign_id, mv.instrument, COALESCE(mv.exposure, mv.visit) AS exposure, mv.detector,
           GROUPING(mv.instrument, COALESCE(mv.exposure, mv.visit), mv.detector) AS g,
           avg(mv.value) AS value, count(mv.value) AS n, count(*) AS rows,
           min(mv.value) AS low, max(mv.value) AS high, min(mv.day_obs) AS day_obs, min(mv.band) AS band
      FROM {MV} mv
     WHERE {{where}}
     GROUP BY GROUPING SETS ((mv.campaign_id, mv.instrument, COALESCE(mv.exposure, mv.visit)),
                             (mv.campaign_id, mv.instrument, mv.detector), (mv.campaign_id))
"""  # noqa: S608 - table name only
# ... or the same rows from the rollups (a few rows per exposure and per detector instead of every value).
_ROLLUP_AGG = f"""
    SELECT mv.campaign_id, mv.instrument, mv.exposure, NULL::integer AS detector, 1 AS g,
           sum(mv.total) / NULLIF(sum(mv.n), 0)::double precision AS value, sum(mv.n)::bigint AS n,
           sum(mv.rows)::bigint AS rows, min(mv.low) AS low, max(mv.high) AS high,
           min(mv.day_obs) AS day_obs, min(mv.band) AS band
      FROM {rollups.EXPOSURE} mv WHERE {{where}} GROUP BY mv.campaign_id, mv.instrument, mv.exposure
    UNION ALL
    SELECT mv.campaign_id, mv.instrument, NULL::bigint, mv.detector, 2,
           sum(mv.total) / NULLIF(sum(mv.n), 0)::double precision, sum(mv.n)::bigint, NULL::bigint,
           NULL::double precision, NULL::double precision, NULL::integer, NULL::varchar
      FROM {rollups.DETECTOR} mv WHERE {{where}} GROUP BY mv.campaign_id, mv.instrument, mv.detector
    UNION ALL
    SELECT mv.campaign_id, NULL, NULL, NULL, 7, NULL, sum(mv.n)::bigint, sum(mv.rows)::bigint,
           min(mv.low), max(mv.high), NULL, NULL
      FROM {rollups.EXPOSURE} mv WHERE {{where}} GROUP BY mv.campaign_id
"""  # noqa: S608 - table names only


def _explorer_data(query: MetricQuery, bins: int, cap: int) -> ExplorerData:
    grids = rollups.ensure_fresh(query.campaign_ids, query.metric)
    from_rollups = uses_rollups(query)
    where, params = query.where()
    # The aggregates per exposure, per detector and per campaign, then the exposures placed (time, pointing)
    # and thinned to the cap, and the detectors named, from the mirror.
    agg = (_ROLLUP_AGG if from_rollups else _RAW_AGG).format(where=where)
    agg_params = params * 3 if from_rollups else params
    sql = f"""
        WITH agg AS MATERIALIZED ({agg}
        ), placed AS (
            SELECT agg.campaign_id, r.label, agg.exposure, agg.value, agg.n,
                   COALESCE(agg.day_obs, e.day_obs) AS day_obs, COALESCE(agg.band, NULLIF(e.band, '')) AS band,
                   e.begin, e.ra, e.dec,
                   row_number() OVER (ORDER BY e.begin NULLS LAST, agg.exposure, agg.campaign_id) AS rn,
                   count(*) OVER () AS total
              FROM agg
              JOIN campaigns_campaign c ON c.id = agg.campaign_id
              JOIN tagging_butlerrepo r ON r.label = c.butler_repo_id
              LEFT JOIN tagging_exposure e
                ON e.repo_id = r.id AND e.instrument = agg.instrument AND e.exposure_id = agg.exposure
             WHERE agg.g = 1 AND agg.exposure IS NOT NULL
        )
        SELECT 'e', campaign_id, label, exposure, value, n, day_obs, band, begin, ra, dec, total,
               NULL::double precision, NULL::double precision
          FROM placed WHERE total <= %s OR (rn * %s) / total <> ((rn - 1) * %s) / total
        UNION ALL
        SELECT 'd', agg.campaign_id, COALESCE(d.full_name, ''), agg.detector, agg.value, agg.n,
               NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
          FROM agg
          JOIN campaigns_campaign c ON c.id = agg.campaign_id
          JOIN tagging_butlerrepo r ON r.label = c.butler_repo_id
          LEFT JOIN tagging_detector d
            ON d.repo_id = r.id AND d.instrument = agg.instrument AND d.detector_id = agg.detector
         WHERE agg.g = 2 AND agg.detector IS NOT NULL
        UNION ALL
        SELECT 'c', campaign_id, NULL, NULL, NULL, n, NULL, NULL, NULL, NULL, NULL, rows, low, high
          FROM agg WHERE agg.g = 7
    """  # noqa: S608 - fixed SQL
    labels = {c.pk: c.name for c in query.campaigns}
    with transaction.atomic(), connection.cursor() as cursor:
        # Enough memory to hash the three groupings at once (instead of sorting on disk); no JIT, whose
        # compile time costs more than it saves on these short aggregates.
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, [*agg_params, cap, cap, cap])
        rows = cursor.fetchall()
        fine = _fine_counts(query, where, params, rows, grids, from_rollups)
    points: list[ExposurePoint] = []
    detectors: dict[int, list[DetectorCell]] = {c.pk: [] for c in query.campaigns}
    nulls: dict[int, int] = {}
    total = 0
    for kind, cid, label, key, value, n, day_obs, band, begin, ra, dec, count, _low, _high in rows:
        if kind == "e":
            total = count
            points.append(ExposurePoint(labels[cid], label, key, value, n, day_obs, begin, ra, dec, band))
        elif kind == "d":
            detectors[cid].append(DetectorCell(detector=key, value=value, count=n, full_name=label))
        else:
            nulls[cid] = count - n
    points.sort(key=lambda p: (p.begin is None, p.begin or 0, p.exposure, p.label))
    for cells in detectors.values():
        cells.sort(key=lambda c: c.detector)
    return ExplorerData(_histogram(fine, nulls, labels, bins), points, total, detectors)


def _fine_counts(query, where, params, rows, grids, from_rollups) -> tuple[int, list[tuple[int, int, int]]] | None:
    """Counts of the finite values per campaign in the fine bins of the coarsest grid among the campaigns:
    (grid, [(campaign, bin, count)]). From the histogram rollup, or from the values (``floor(value / width)``
    with the very width the rollup used, so both give the same bins)."""
    if not any(kind == "c" and low is not None for kind, *_, low, _high in rows):
        return None
    present = {cid: g for cid, g in grids.items() if g is not None}
    if not present:
        return None
    if from_rollups:
        counted = _fetch(
            f"SELECT mv.campaign_id, mv.bin, sum(mv.n)::bigint FROM {rollups.HISTOGRAM} mv "  # noqa: S608
            f"WHERE {where} GROUP BY 1, 2",
            params,
        )
    else:
        ids = list(present)
        counted = _fetch(
            f"SELECT mv.campaign_id, floor(mv.value / g.width)::bigint, count(*) FROM {MV} mv "  # noqa: S608
            "JOIN unnest(%s::bigint[], %s::double precision[]) AS g(campaign_id, width) "
            f"ON g.campaign_id = mv.campaign_id WHERE {where} AND mv.value IS NOT NULL GROUP BY 1, 2",
            [ids, [rollups.bin_width(present[i]) for i in ids], *params],
        )
    coarsest = max(present.values())
    # The grids are powers of ten, so a bin of a finer grid lies in exactly one bin of the coarsest.
    return coarsest, [(cid, b // 10 ** (coarsest - present[cid]), n) for cid, b, n in counted if cid in present]


def _histogram(fine, nulls, labels, bins) -> list[HistogramSeries]:
    """At most ``bins`` equal bins made of whole fine bins, over the range of the values (padded to ``bins``
    fine bins when it spans fewer)."""
    if not fine or not fine[1]:
        return [HistogramSeries(labels[cid], [0.0, 1.0], [0], nulls.get(cid, 0)) for cid in labels]
    grid, counted = fine
    first = min(b for _, b, _ in counted)
    span = max(b for _, b, _ in counted) - first + 1
    if span < bins:
        first -= (bins - span) // 2
        span = bins
    per = -(-span // bins)  # fine bins per drawn bin
    drawn = -(-span // per)
    counts: dict[int, list[int]] = defaultdict(lambda: [0] * drawn)
    for cid, b, n in counted:
        counts[cid][(b - first) // per] += int(n)

    def edge(i: int) -> float:
        index = first + i * per
        return index / 10 ** (-grid) if grid < 0 else float(index * 10**grid)

    edges = [edge(i) for i in range(drawn + 1)]
    return [HistogramSeries(labels[cid], edges, counts[cid], nulls.get(cid, 0)) for cid in labels]


def metric_histogram(*, query: MetricQuery, bins: int = HISTOGRAM_BINS) -> list[HistogramSeries]:
    return metric_explorer_data(query=query, bins=bins, use_cache=False).histogram


def metric_per_exposure(*, query: MetricQuery, cap: int = POINT_CAP) -> tuple[list[ExposurePoint], int]:
    """The mean of the metric per exposure (or visit) and campaign, with the exposure's time, night, band and
    pointing from the mirror; thinned evenly (in time order) to at most ``cap`` points. Returns (points, total)."""
    data = metric_explorer_data(query=query, cap=cap, use_cache=False)
    return data.points, data.exposure_total


def metric_per_detector(*, query: MetricQuery) -> dict[int, list[DetectorCell]]:
    """The mean of the metric per detector, for each campaign, with the detector's full name from the mirror."""
    return metric_explorer_data(query=query, use_cache=False).detectors


# --- campaign A against campaign B ---------------------------------------------------------------------------


@dataclass
class Comparison:
    pairs: list[PairPoint]
    paired: int
    only_a: int
    only_b: int
    differences: HistogramSeries
    largest: list[PairPoint] = field(default_factory=list)


def metric_comparison(
    *,
    query: MetricQuery,
    cap: int = PAIR_CAP,
    top: int = TOP_CHANGES,
    bins: int = HISTOGRAM_BINS,
    use_cache: bool = True,
) -> Comparison:
    """The metric of campaign A (``query.campaigns[0]``) against B (``[1]``) on the data IDs both measured:
    a sample of at most ``cap`` pairs for the scatter, the histogram of B - A and the ``top`` largest changes
    (cached, see ``cached``)."""
    if connection.vendor != "postgresql":  # SQLite (make run): the portable twin
        return portable.comparison(query, cap, top, bins)
    if not use_cache:
        return _comparison(query, cap, top, bins)
    return cached("compare", query, lambda: _comparison(query, cap, top, bins), cap=cap, top=top, bins=bins)


def _comparison(query: MetricQuery, cap: int, top: int, bins: int) -> Comparison:
    """From the campaigns' pair indexes (``pairs``: sorted arrays merged in numpy), brought up to date first;
    in SQL (``comparison_sql``) for a (campaign, metric) too large to have one."""
    ids = query.campaign_ids[:2]
    rollups.ensure_fresh(ids, query.metric)
    rollups.ensure_pair_indexes(ids, query.metric)
    found = pairs.compare(query, cap, top, bins)
    return found if found is not None else comparison_sql(query, cap, top, bins)


def comparison_sql(query: MetricQuery, cap: int, top: int, bins: int) -> Comparison:
    """The comparison as one SQL statement over the values (a FULL JOIN on the data ID key): the fallback
    of ``_comparison``, and what the tests hold ``pairs`` to."""
    a, b = query.campaigns[0], query.campaigns[1]
    where_a, params_a = query.where("x", campaign_ids=[a.pk])
    where_b, params_b = query.where("y", campaign_ids=[b.pk])
    # One statement: the two campaigns joined once on the data ID (FULL JOIN, so the values of only one side
    # are counted in the same pass), kept in memory (MATERIALIZED) and read four times.
    sql = f"""
        WITH j AS MATERIALIZED (
            SELECT COALESCE(x.data_id_key, y.data_id_key) AS data_id_key, x.value AS a, y.value AS b,
                   y.value - x.value AS d, x.data_id_key IS NOT NULL AS in_a, y.data_id_key IS NOT NULL AS in_b
              FROM (SELECT x.data_id_key, x.value FROM {MV} x WHERE {where_a}) x
              FULL JOIN (SELECT y.data_id_key, y.value FROM {MV} y WHERE {where_b}) y
                ON y.data_id_key = x.data_id_key
        ), r AS (
            SELECT min(d) AS lo, max(d) AS hi, count(*) FILTER (WHERE in_a AND in_b) AS n,
                   count(*) FILTER (WHERE in_a AND in_b AND d IS NULL) AS nulls,
                   count(*) FILTER (WHERE in_a) AS na, count(*) FILTER (WHERE in_b) AS nb, count(*) AS total FROM j
        ), rr AS (
            SELECT r.*, CASE WHEN hi > lo THEN lo ELSE lo - GREATEST(abs(lo) * 0.05, 0.5) END AS blo,
                   CASE WHEN hi > lo THEN hi ELSE hi + GREATEST(abs(hi) * 0.05, 0.5) END AS bhi FROM r
        )
        SELECT 'r', NULL, blo, bhi, n, nulls, na, nb FROM rr
        UNION ALL
        SELECT 'h', NULL, NULL, NULL, LEAST(width_bucket(j.d, rr.blo, rr.bhi, %s), %s), count(*), NULL, NULL
          FROM j, rr WHERE j.d IS NOT NULL GROUP BY 5
        UNION ALL
        (SELECT 't', data_id_key, a, b, NULL, NULL, NULL, NULL FROM j WHERE d IS NOT NULL
          ORDER BY abs(d) DESC, data_id_key LIMIT %s)
        UNION ALL
        SELECT 's', data_id_key, a, b, NULL, NULL, NULL, NULL
          FROM (SELECT data_id_key, a, b, row_number() OVER () AS rn FROM j WHERE in_a AND in_b) p, rr
         WHERE p.rn %% GREATEST(1, (rr.n + %s - 1) / %s) = 0
    """  # noqa: S608 - table name only
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '256MB'")  # the joined pairs stay in memory
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, [*params_a, *params_b, bins, bins, top, cap, cap])
        rows = cursor.fetchall()
    lo = hi = None
    paired = nulls = count_a = count_b = 0
    counts = [0] * bins
    largest: list[PairPoint] = []
    pairs: list[PairPoint] = []
    for kind, key, va, vb, n, m, na, nb in rows:
        if kind == "r":
            lo, hi, paired, nulls, count_a, count_b = va, vb, n, m, na, nb
        elif kind == "h":
            counts[min(max(int(n), 1), bins) - 1] += m
        else:
            (largest if kind == "t" else pairs).append(_pair(a.butler_repo_id, key, va, vb))
    largest.sort(key=lambda p: (-abs(p.diff or 0), p.data_id_key))
    span = None if lo is None or hi is None else (lo, hi)
    return Comparison(
        pairs=pairs,
        paired=paired,
        only_a=count_a - paired,
        only_b=count_b - paired,
        differences=difference_histogram(f"{b.name} − {a.name}", span, counts, nulls or 0, bins),
        largest=largest,
    )


def _pair(repo: str, key: str, a: float | None, b: float | None) -> PairPoint:
    """A pair with its exposure (else visit) and detector read back from the canonical data ID key."""
    exposure = _KEY_EXPOSURE.search(key) or _KEY_VISIT.search(key)
    detector = _KEY_DETECTOR.search(key)
    return PairPoint(
        repo,
        int(exposure.group(1)) if exposure else None,
        int(detector.group(1)) if detector else None,
        key,
        a,
        b,
    )


_KEY_EXPOSURE, _KEY_VISIT, _KEY_DETECTOR = (
    re.compile(rf"(?:^|,){name}=(-?\d+)(?:,|$)") for name in ("exposure", "visit", "detector")
)


# --- campaign overview ---------------------------------------------------------------------------------------


@dataclass
class Overview:
    states: dict[str, int]
    total_groups: int
    progress: list[ProgressSeries]
    failures_by_task: list[tuple[str, int]]
    failures_by_rule: list[tuple[str, int]]
    run_times: list[tuple[str, float | None]]
    metric_count: int

    @property
    def failed_quanta(self) -> int:
        return sum(n for _, n in self.failures_by_task)


def campaign_overview(*, campaign: Campaign) -> Overview:
    """Execution state of a campaign for its dashboard, in six queries whatever its size."""
    state_rows = Group.objects.filter(step__campaign=campaign).values_list("status").annotate(n=Count("id")).order_by()
    found = dict(state_rows)
    states = {s: found.get(s, 0) for s in GroupStatus.values}
    # Every state change in time order: how many groups were running, done, failed at each moment.
    moves = (
        GroupTransition.objects.filter(group__step__campaign=campaign)
        .order_by("at", "pk")
        .values_list("at", "group_id", "to_status")
    )
    progress = progress_series(
        moves.iterator(chunk_size=5000),
        running=GROUP_ACTIVE_STATES,
        done=GROUP_DONE_STATES,
        failed=[GroupStatus.FAILED],
    )
    errors = QuantumError.objects.filter(submission__group__step__campaign=campaign)
    by_task = list(errors.values_list("task_label").annotate(n=Count("id")).order_by("-n", "task_label"))
    by_rule_rows = (
        errors.values_list("rule__task_label", "rule__message_regex", "rule__action")
        .annotate(n=Count("id"))
        .order_by("-n")
    )
    by_rule = [
        (f"{task or '*'} /{regex}/ → {action}" if regex else "no rule matched", n)
        for task, regex, action, n in by_rule_rows
    ]
    duration = ExpressionWrapper(
        F("finished") - Coalesce("started", "submitted", "created"), output_field=DurationField()
    )
    run_times = [
        (step, d.total_seconds() if d is not None else None)
        for step, d in Submission.objects.filter(group__step__campaign=campaign, finished__isnull=False)
        .annotate(d=duration)
        .order_by("group__step__position", "pk")
        .values_list("group__step__name", "d")
    ]
    return Overview(
        states=states,
        total_groups=sum(states.values()),
        progress=progress,
        failures_by_task=by_task,
        failures_by_rule=by_rule,
        run_times=run_times,
        metric_count=MetricValue.objects.filter(campaign=campaign).count(),
    )


# --- exposure page -------------------------------------------------------------------------------------------


def exposure_campaigns(*, user, exposure) -> list[ExposureCampaign]:
    """Every campaign the user may view that processed this exposure (see ``exposure_processing``)."""
    return exposure_processing(user=user, exposure=exposure).campaigns


def metric_value_list(*, user, filters: Mapping[str, Any] | None = None) -> QuerySet[MetricValue]:
    """Metric values ``user`` may see, filtered (campaign, metric, exposure, visit, detector, band, nights,
    value range); raises ``django.core.exceptions.ValidationError`` for a malformed filter."""
    from django.core.exceptions import ValidationError

    base = MetricValue.objects.restrict(user).select_related("campaign", "step")
    filterset = MetricValueFilterSet(filters or {}, queryset=base)
    if not filterset.is_valid():
        raise ValidationError({k: [str(m) for m in v] for k, v in filterset.errors.items()})
    return filterset.qs.order_by("metric", "data_id_key", "source_key")


def metric_name_list(*, user, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The metric names (with unit and how many values) among the values ``user`` may see."""
    values = metric_value_list(user=user, filters=filters)
    rows = values.order_by().values("metric", "unit").annotate(count=Count("id")).order_by("metric", "unit")
    return [dict(row) for row in rows]


def campaign_metric_summary(*, user, campaign) -> dict[str, Any]:
    """What the campaign page shows about metrics: counts, gate results and frozen inputs per step.

    ``campaign`` was fetched through ``access_campaign``, so ``user`` may view it."""
    steps = list(campaign.steps.order_by("position"))
    checks = {c.step_id: c for c in StepCheck.objects.filter(step__in=steps)}
    gates: dict[int, list[GateResult]] = {}
    for result in GateResult.objects.filter(step__in=steps).order_by("step", "position"):
        gates.setdefault(result.step_id, []).append(result)
    freezes = {
        f.step_id: f for f in StepInputFreeze.objects.filter(step__in=steps).select_related("version__dataid_set")
    }
    names = list(
        MetricValue.objects.filter(campaign=campaign)
        .order_by()
        .values("metric", "unit")
        .annotate(count=Count("id"))
        .order_by("metric")
    )
    return {
        "names": names,
        "total": sum(n["count"] for n in names),
        "steps": [
            {
                "step": step,
                "gates": step.quality_gates,
                "metric_input": step.metric_input,
                "check": checks.get(step.pk),
                "results": gates.get(step.pk, []),
                "freeze": freezes.get(step.pk),
            }
            for step in steps
            if step.quality_gates or step.metric_input or step.pk in checks
        ],
    }


def campaign_for_metrics(*, user, campaign: str | int):
    """A campaign the user may view, by id or name (404 otherwise)."""
    from campaigns.models import Campaign

    visible = Campaign.objects.restrict(user, "view").select_related("butler_repo")
    text = str(campaign).strip()
    found = visible.filter(pk=int(text)).first() if text.isdigit() else visible.filter(name=text).first()
    if found is None:
        raise Http404("No such campaign.")
    return found
