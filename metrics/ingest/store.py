"""Storing placed measurements: batches upserted on the idempotency constraint, with a report of what was not."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

from .. import rollups
from ..models import MetricValue
from ..rollups import mark_dirty_sql
from .formats import Measurement
from .placement import DataIdPlacer, UnitChecker

BATCH = 5_000
_STAGE = "metricvalue_stage"
PROBLEM_SAMPLE = 200

_COLUMNS = (
    "metric", "value", "unit", "data_id_key", "instrument", "exposure", "visit", "detector", "day_obs", "band",
    "physical_filter", "skymap", "tract", "patch", "repo_id", "campaign_id", "step_id", "group_id", "run",
    "dataset_type", "dataset_id", "source", "source_key", "timestamp",
)  # fmt: skip
_UPDATED = [c for c in _COLUMNS if c not in ("metric", "data_id_key", "source_key")]
_DIMENSIONS = _COLUMNS[4:14]


@dataclass
class RunPlace:
    """Where a RUN collection sits in a campaign (or nothing, for an outside source)."""

    campaign_id: int | None = None
    step_id: int | None = None
    group_id: int | None = None


@dataclass
class IngestReport:
    """What an ingest did: values new, changed, unchanged, and the first problems with their total."""

    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    problems: list[dict[str, str]] = field(default_factory=list)

    def reject(self, where: str, key: str, message: str) -> None:
        self.rejected += 1
        if len(self.problems) < PROBLEM_SAMPLE:
            self.problems.append({"where": where, "key": key, "message": message})

    @property
    def stored(self) -> int:
        return self.created + self.updated + self.unchanged

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "stored": self.stored,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "problems": self.problems,
        }

    def merge(self, other: IngestReport) -> None:
        for name in ("read", "created", "updated", "unchanged", "rejected"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.problems += other.problems[: max(0, PROBLEM_SAMPLE - len(self.problems))]


class Ingestor:
    """Places measurements one batch at a time and upserts each batch in one statement (bounded memory)."""

    def __init__(self, *, repo, source: str = "", runs: dict[str, RunPlace] | None = None, campaign_id=None):
        self.repo = repo
        self.source = source
        self.runs = runs  # None: any run (outside source); else the campaign's RUN collections
        self.campaign_id = campaign_id
        self.placer = DataIdPlacer(repo)
        self.units = UnitChecker()
        self.report = IngestReport()
        self._last_data_id: object = None
        self._last_place: tuple[Any, str, str] = (None, "", "")
        self.touched: set[tuple[int, str]] = set()

    def run(self, measurements: Iterable[Measurement]) -> IngestReport:
        batch: list[Measurement] = []
        for measurement in measurements:
            self.report.read += 1
            batch.append(measurement)
            if len(batch) >= BATCH:
                self._flush(batch)
                batch = []
        self._flush(batch)
        if self.touched:
            rollups.refresh_dirty(self.touched)  # recompute the touched (campaign, metric)s' rollups
        return self.report

    def _row(self, m: Measurement) -> tuple | None:
        if m.problem:
            self.report.reject(m.where, m.problem_key, m.problem)
            return None
        if len(m.metric) > 200:
            self.report.reject(m.where, "metric", "a metric name is at most 200 characters")
            return None
        problem = self.units.check(m.unit)
        if problem:
            self.report.reject(m.where, f"{m.metric}.unit", problem)
            return None
        place = RunPlace()
        if self.runs is not None:
            if not m.run:
                self.report.reject(m.where, "run", "no RUN collection: say which run of the campaign produced it")
                return None
            found = self.runs.get(m.run)
            if found is None:
                self.report.reject(m.where, "run", f"{m.run!r} is not a RUN collection of this campaign")
                return None
            place = found
        # The values of one record or bundle share one data-ID mapping: place it once.
        if self._last_data_id is not m.data_id:
            columns, key, message = self.placer.place(m.data_id)
            dims = tuple(columns.get(d) for d in _DIMENSIONS) if columns is not None else None
            self._last_data_id, self._last_place = m.data_id, (dims, key, message)
        dims, key, message = self._last_place
        if dims is None:
            self.report.reject(m.where, key, message)
            return None
        source_key = m.run if self.runs is not None else f"source:{self.source}"
        return (
            m.metric, m.value, m.unit, key, *dims, self.repo.pk, place.campaign_id, place.step_id, place.group_id,
            m.run[:512], m.dataset_type[:200], m.dataset_id[:64], self.source[:200], source_key[:512], m.timestamp,
        )  # fmt: skip

    def _flush(self, batch: list[Measurement]) -> None:
        if not batch:
            return
        self._last_data_id = None  # the mirror cache may have been refreshed
        self.placer.prefetch(m.data_id for m in batch if not m.problem)
        rows: dict[tuple[str, str, str], tuple] = {}
        for m in batch:
            row = self._row(m)
            if row is not None:
                # The same measurement twice in one batch: the last one wins (ON CONFLICT cannot see both).
                rows[(row[-2], row[0], row[3])] = row
        if rows:
            self._upsert(list(rows.values()))

    def _upsert(self, rows: list[tuple]) -> None:
        if connection.vendor == "postgresql":
            self._upsert_postgresql(rows)
        else:
            self._upsert_portable(rows)

    def _upsert_postgresql(self, rows: list[tuple]) -> None:
        """COPY the batch into a temporary table, then one INSERT ... ON CONFLICT from it: the statement text
        stays short (a VALUES list of 50,000 parameters costs more to parse than to run)."""
        from django.db import transaction
        from django.utils import timezone

        table = MetricValue._meta.db_table
        columns = ", ".join(_COLUMNS)
        changed = " OR ".join(f"{table}.{c} IS DISTINCT FROM EXCLUDED.{c}" for c in _UPDATED)
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in _UPDATED)
        now = timezone.now()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} ON COMMIT DROP AS "  # noqa: S608 - fixed names
                f"SELECT {columns}, ingested FROM {table} WITH NO DATA"
            )
            cursor.execute(f"TRUNCATE {_STAGE}")
            with cursor.cursor.copy(f"COPY {_STAGE} ({columns}, ingested) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row((*row, now))
            # xmax = 0 tells a fresh insert from an update; rows whose values did not change are not touched.
            cursor.execute(
                f"INSERT INTO {table} ({columns}, ingested) SELECT {columns}, ingested FROM {_STAGE} "  # noqa: S608
                "ON CONFLICT ON CONSTRAINT metricvalue_unique_measurement "
                f"DO UPDATE SET {sets}, ingested = EXCLUDED.ingested WHERE {changed} "
                "RETURNING (xmax = 0), campaign_id, metric"
            )
            found = cursor.fetchall()
            results = [r[0] for r in found]
            # The (campaign, metric)s whose values changed: their dashboard rollups are stale from this commit.
            touched = sorted({(c, m) for _, c, m in found if c is not None})
            if touched:
                cursor.execute(
                    mark_dirty_sql("unnest(%s::bigint[], %s::text[]) AS t(campaign_id, metric)"),
                    [[c for c, _ in touched], [m for _, m in touched]],
                )
                self.touched.update(touched)
        created = sum(1 for r in results if r)
        self.report.created += created
        self.report.updated += len(results) - created
        self.report.unchanged += len(rows) - len(results)

    def _upsert_portable(self, rows: list[tuple]) -> None:
        """The same result on other databases (SQLite for a quick local run): look up, create, update."""
        from django.db.models import Q

        keys = {(r[-2], r[0], r[3]): r for r in rows}
        existing: dict[tuple, MetricValue] = {}
        lookup = Q()
        for source_key, metric, key in keys:
            lookup |= Q(source_key=source_key, metric=metric, data_id_key=key)
        for value in MetricValue.objects.filter(lookup):
            existing[(value.source_key, value.metric, value.data_id_key)] = value
        fields = [c for c in _COLUMNS]
        new, changed = [], []
        for key, row in keys.items():
            data = dict(zip(fields, row, strict=True))
            current = existing.get(key)
            if current is None:
                new.append(MetricValue(**data))
                continue
            if any(getattr(current, c) != data[c] for c in _UPDATED):
                for c in _UPDATED:
                    setattr(current, c, data[c])
                changed.append(current)
        MetricValue.objects.bulk_create(new)
        if changed:
            MetricValue.objects.bulk_update(changed, _UPDATED)
        self.report.created += len(new)
        self.report.updated += len(changed)
        self.report.unchanged += len(keys) - len(new) - len(changed)
