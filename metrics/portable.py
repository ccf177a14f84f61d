"""The dashboards' reads for databases other than PostgreSQL (SQLite, for ``make run``).

PostgreSQL is the production and fast path (``metrics.selectors``: GROUPING SETS, ``width_bucket``, a
loose index scan, one statement per chart). Here the same answers come from plain ORM reads of the
metric values aggregated in Python, which is fine for the small SQLite demo (thousands of values).
Each function returns exactly what its PostgreSQL twin returns (the tests compare them on the same data).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from django.db.models import Max, Min, QuerySet

from core.sqlite_functions import width_bucket

from .charts import DetectorCell, ExposurePoint
from .models import MetricValue

if TYPE_CHECKING:
    from .selectors import Comparison, ExplorerData, MetricQuery


def query_values(query: MetricQuery, *, campaign_ids: list[int] | None = None) -> QuerySet[MetricValue]:
    """The values ``MetricQuery.where`` selects, as a queryset."""
    from campaigns.models import Step

    ids = list(campaign_ids if campaign_ids is not None else query.campaign_ids)
    values = MetricValue.objects.filter(campaign_id__in=ids, metric=query.metric)
    if query.band:
        values = values.filter(band=query.band)
    if query.night_from is not None:
        values = values.filter(day_obs__gte=query.night_from)
    if query.night_to is not None:
        values = values.filter(day_obs__lte=query.night_to)
    if query.step:
        values = values.filter(step_id__in=Step.objects.filter(campaign_id__in=ids, name=query.step).values("id"))
    if query.detector is not None:
        values = values.filter(detector=query.detector)
    if query.value_min is not None:
        values = values.filter(value__gte=query.value_min)
    if query.value_max is not None:
        values = values.filter(value__lte=query.value_max)
    return values.order_by()


def campaign_metric_names(*, campaign_ids: list[int]) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    rows = MetricValue.objects.filter(campaign_id__in=campaign_ids).order_by("metric", "id")
    for metric, unit in rows.values_list("metric", "unit"):
        seen.setdefault(metric, unit or "")
    return sorted(seen.items())


def data_stamp(campaign_ids: list[int]) -> list[int | None]:
    newest = dict(
        MetricValue.objects.filter(campaign_id__in=campaign_ids)
        .order_by()
        .values_list("campaign_id")
        .annotate(m=Max("id"))
    )
    return [newest.get(cid) for cid in campaign_ids]


def _mean(values: list[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def _min(values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def explorer_data(query: MetricQuery, bins: int, cap: int) -> ExplorerData:
    """``selectors.metric_explorer_data`` computed in Python (no cache: the SQLite data is small)."""
    from tagging.models import ButlerRepo, Detector, Exposure

    from . import rollups
    from .selectors import ExplorerData, _histogram

    labels = {c.pk: c.name for c in query.campaigns}
    repo_of = {c.pk: c.butler_repo_id for c in query.campaigns}
    repo_ids = dict(ButlerRepo.objects.filter(label__in=set(repo_of.values())).values_list("label", "id"))
    rows = list(
        query_values(query).values_list(
            "campaign_id", "instrument", "exposure", "visit", "detector", "value", "day_obs", "band"
        )
    )
    per_exposure: dict[tuple, list] = defaultdict(list)
    per_detector: dict[tuple, list] = defaultdict(list)
    per_campaign: dict[int, list] = defaultdict(list)
    for row in rows:
        cid, instrument, exposure, visit, detector = row[:5]
        per_exposure[(cid, instrument, exposure if exposure is not None else visit)].append(row)
        per_detector[(cid, instrument, detector)].append(row)
        per_campaign[cid].append(row)

    exposures: dict[tuple[Any, ...], Any] = {
        (e["repo_id"], e["instrument"], e["exposure_id"]): e
        for e in Exposure.objects.filter(
            repo_id__in=repo_ids.values(), exposure_id__in={k[2] for k in per_exposure if k[2] is not None}
        ).values("repo_id", "instrument", "exposure_id", "day_obs", "band", "begin", "ra", "dec")
    }
    placed = []
    for (cid, instrument, exposure), group in per_exposure.items():
        if exposure is None:
            continue
        present = [r[5] for r in group if r[5] is not None]
        e = exposures.get((repo_ids.get(repo_of[cid]), instrument, exposure), {})
        day_obs = _min([r[6] for r in group])
        band = _min([r[7] for r in group])
        placed.append(
            (
                cid,
                ExposurePoint(
                    labels[cid],
                    repo_of[cid],
                    exposure,
                    _mean(present),
                    len(present),
                    day_obs if day_obs is not None else e.get("day_obs"),
                    e.get("begin"),
                    e.get("ra"),
                    e.get("dec"),
                    band if band is not None else (e.get("band") or None),
                ),
            )
        )
    # ORDER BY e.begin NULLS LAST, exposure, campaign id; then thinned evenly to the cap.
    placed.sort(key=lambda cp: (cp[1].begin is None, cp[1].begin or 0, cp[1].exposure, cp[0]))
    total = len(placed)
    points = [
        p
        for rn, (_, p) in enumerate(placed, start=1)
        if total <= cap or (rn * cap) // total != ((rn - 1) * cap) // total
    ]
    points.sort(key=lambda p: (p.begin is None, p.begin or 0, p.exposure, p.label))

    names: dict[tuple[Any, ...], str] = {
        (d["repo_id"], d["instrument"], d["detector_id"]): d["full_name"]
        for d in Detector.objects.filter(repo_id__in=repo_ids.values()).values(
            "repo_id", "instrument", "detector_id", "full_name"
        )
    }
    detectors: dict[int, list[DetectorCell]] = {c.pk: [] for c in query.campaigns}
    for (cid, instrument, detector), group in per_detector.items():
        if detector is None:
            continue
        present = [r[5] for r in group if r[5] is not None]
        full_name = names.get((repo_ids.get(repo_of[cid]), instrument, detector)) or ""
        detectors[cid].append(
            DetectorCell(detector=detector, value=_mean(present), count=len(present), full_name=full_name)
        )
    for cells in detectors.values():
        cells.sort(key=lambda c: c.detector)

    # The same histogram as the PostgreSQL path: fine bins of 10**grid, the grid chosen from each campaign's
    # whole range of the metric (as its rollup does), merged on the coarsest grid into at most ``bins`` bins.
    nulls = {cid: sum(1 for r in group if r[5] is None) for cid, group in per_campaign.items()}
    whole = (
        MetricValue.objects.filter(campaign_id__in=query.campaign_ids, metric=query.metric, value__isnull=False)
        .values("campaign_id")
        .annotate(low=Min("value"), high=Max("value"))
    )
    grids = {row["campaign_id"]: rollups.grid_of(row["low"], row["high"]) for row in whole}
    gridded = {cid: g for cid, g in grids.items() if g is not None}
    fine = None
    if gridded and any(r[5] is not None for r in rows):
        coarsest = max(gridded.values())
        counted: dict[tuple[int, int], int] = defaultdict(int)
        for row in rows:
            cid, value = row[0], row[5]
            if value is not None and cid in gridded:
                b = math.floor(value / rollups.bin_width(gridded[cid]))
                counted[(cid, b // 10 ** (coarsest - gridded[cid]))] += 1
        fine = (coarsest, [(cid, b, n) for (cid, b), n in counted.items()])
    return ExplorerData(_histogram(fine, nulls, labels, bins), points, total, detectors)


def comparison(query: MetricQuery, cap: int, top: int, bins: int) -> Comparison:
    """``selectors.metric_comparison`` computed in Python (no cache)."""
    from .selectors import Comparison, _pair, difference_histogram, difference_range

    a, b = query.campaigns[0], query.campaigns[1]
    side_a: dict[str, list] = defaultdict(list)
    side_b: dict[str, list] = defaultdict(list)
    for key, value in query_values(query, campaign_ids=[a.pk]).values_list("data_id_key", "value"):
        side_a[key].append(value)
    for key, value in query_values(query, campaign_ids=[b.pk]).values_list("data_id_key", "value"):
        side_b[key].append(value)
    joined: list[tuple[str, float | None, float | None, bool, bool]] = []  # the FULL JOIN on the data ID
    for key in sorted(set(side_a) | set(side_b)):
        for va in side_a.get(key) or [None]:
            for vb in side_b.get(key) or [None]:
                joined.append((key, va, vb, key in side_a, key in side_b))

    def diff(va: float | None, vb: float | None) -> float | None:
        return vb - va if va is not None and vb is not None else None

    both = [j for j in joined if j[3] and j[4]]
    diffs = [d for j in joined if (d := diff(j[1], j[2])) is not None]
    paired, nulls = len(both), sum(1 for j in both if diff(j[1], j[2]) is None)
    count_a, count_b = sum(1 for j in joined if j[3]), sum(1 for j in joined if j[4])
    span = difference_range(min(diffs), max(diffs)) if diffs else None
    counts = [0] * bins
    if span is not None:
        lo, hi = span
        for d in diffs:
            counts[min(max(min(width_bucket(d, lo, hi, bins) or 0, bins), 1), bins) - 1] += 1
    ranked = sorted(
        (j for j in joined if diff(j[1], j[2]) is not None), key=lambda j: (-abs(diff(j[1], j[2]) or 0), j[0])
    )
    largest = [_pair(a.butler_repo_id, key, va, vb) for key, va, vb, _, _ in ranked[:top]]
    largest.sort(key=lambda p: (-abs(p.diff or 0), p.data_id_key))
    step = max(1, (paired + cap - 1) // cap)  # every step-th pair
    pairs = [
        _pair(a.butler_repo_id, key, va, vb) for rn, (key, va, vb, _, _) in enumerate(both, start=1) if rn % step == 0
    ]
    return Comparison(
        pairs=pairs,
        paired=paired,
        only_a=count_a - paired,
        only_b=count_b - paired,
        differences=difference_histogram(f"{b.name} − {a.name}", span, counts, nulls, bins),
        largest=largest,
    )
