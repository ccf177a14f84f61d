"""Which exposures each group covers, recorded once from the exposure mirror (``GroupExposure`` rows).

A group processes the data its frozen ``where`` (the campaign's data query AND the group's slice) selects,
joined by pipetask with its data-ID tables (``data_id_table``: the campaign's include/exclude DataID sets
resolved at launch, and a step's input frozen from a metric condition). The same selection is evaluated
here against the mirror (``tagging_exposure`` and, when the where or a table names detectors,
``tagging_detector``) in one ``INSERT ... SELECT`` per group, so the exposure page can list every campaign
that processed an exposure, whether or not it wrote metric values for it.

Off the executor's hot path: launching a campaign (and freezing a step's input) enqueues
``campaigns.tasks.group_coverage_record`` for the campaign; so does a mirror sync that added or removed
exposures or detectors, for every campaign of that repo (``tagging.signals.mirror_changed``: their groups
are pending until recorded again); ``manage.py group_coverage_record`` records groups planned before this
existed. Each group's ``GroupCoverage`` keeps the selection it was evaluated for:
a group whose ``where`` or tables have changed since is pending again, and its old rows are not shown.

A where expression the mirror cannot answer (a bind, a time, a region, a column it does not copy) or a
data-ID table that cannot be read is recorded as ``unknown`` with the reason, and no exposure: the page says
so rather than guess (the Butler could answer, but this runs for every group of every campaign).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Q

from . import inputs
from .choices import CampaignStatus, CoverageState
from .models import Group, GroupCoverage, GroupExposure

logger = logging.getLogger(__name__)

# A group is planned once it has a frozen where (launch writes it); a draft's pre-defined groups are not.
PLANNED = ~Q(where="") & ~Q(step__campaign__status__in=[CampaignStatus.DRAFT, CampaignStatus.READY])


def current_q(prefix: str = "") -> Q:
    """Groups (through ``prefix``, e.g. ``group__``) whose coverage was recorded for their present selection."""
    return Q(
        **{
            f"{prefix}coverage__where": F(f"{prefix}where"),
            f"{prefix}coverage__data_id_table": F(f"{prefix}data_id_table"),
        }
    )


def pending_groups():
    """Planned groups whose coverage is missing or was recorded for another selection."""
    return Group.objects.filter(PLANNED).exclude(current_q())


class Unknown(Exception):
    """The mirror cannot say which exposures the group covers (the message says why)."""


@dataclass
class _Table:
    path: str
    key: str  # exposure | visit
    detector: bool
    rows: list[tuple]  # (instrument, key[, detector]), distinct


def _read_table(path: str, default_instrument: str) -> _Table:
    from astropy.table import Table

    if not Path(path).is_file():
        raise Unknown(f"its data-ID table {path} is missing")
    try:
        table = Table.read(path, format="ascii.ecsv")
    except Exception as exc:  # astropy raises many kinds for a damaged file
        raise Unknown(f"its data-ID table {path} cannot be read: {exc}") from exc
    names = set(table.colnames)
    key = "exposure" if "exposure" in names else "visit" if "visit" in names else None
    if key is None:
        raise Unknown(f"its data-ID table {path} is keyed by ({', '.join(table.colnames)}), not exposures or visits")
    if "instrument" not in names and not default_instrument:
        raise Unknown(f"its data-ID table {path} names no instrument and the repo has no default one")
    detector = "detector" in names
    instruments = [str(v) for v in table["instrument"]] if "instrument" in names else [default_instrument] * len(table)
    columns = [instruments, [int(v) for v in table[key]]]
    if detector:
        columns.append([int(v) for v in table["detector"]])
    return _Table(path, key, detector, sorted(set(zip(*columns, strict=True))))


def _rows_in(columns: list[str], kinds: list[str], rows: list[tuple]) -> tuple[str, list[Any]]:
    """``(columns) IN (the rows)``, the rows passed as parameters: arrays on PostgreSQL, JSON on SQLite."""
    tuple_sql = ", ".join(columns)
    if connection.vendor == "postgresql":
        casts = ", ".join(f"%s::{'text' if k == 'str' else 'bigint'}[]" for k in kinds)
        params: list[Any] = [[r[i] for r in rows] for i in range(len(kinds))]
        return f"(({tuple_sql}) IN (SELECT * FROM unnest({casts})))", params  # noqa: S608 - our names only
    items = ", ".join(f"json_extract(j.value, '$[{i}]')" for i in range(len(kinds)))
    return f"(({tuple_sql}) IN (SELECT {items} FROM json_each(%s) AS j))", [json.dumps([list(r) for r in rows])]  # noqa: S608


class _Evaluator:
    """Builds the mirror SQL of groups' selections, reading each data-ID table and repo's detectors once."""

    def __init__(self) -> None:
        self.tables: dict[tuple[str, str], _Table | Unknown] = {}
        self.detectors: dict[int, bool] = {}

    def table(self, path: str, default_instrument: str) -> _Table:
        key = (path, default_instrument)
        if key not in self.tables:
            try:
                self.tables[key] = _read_table(path, default_instrument)
            except Unknown as exc:
                self.tables[key] = exc
        found = self.tables[key]
        if isinstance(found, Unknown):
            raise found
        return found

    def has_detectors(self, repo_id: int) -> bool:
        from tagging.models import Detector

        if repo_id not in self.detectors:
            self.detectors[repo_id] = Detector.objects.filter(repo_id=repo_id).exists()
        return self.detectors[repo_id]

    def select_sql(self, group: Group) -> tuple[str, list[Any]]:
        """``SELECT group_id, instrument, exposure_id`` of the exposures the group covers; raises Unknown."""
        from tagging.models import Detector, Exposure
        from tagging.selection.compile import NotInMirror, where_mirror_sql

        repo = group.step.campaign.butler_repo
        default = repo.default_instrument or ""
        tables = [self.table(p, default) for p in inputs.table_paths(group.data_id_table)]
        try:
            where, where_params = where_mirror_sql(group.where, default_instrument=default)
            on_detectors = False
        except NotInMirror:
            try:  # detector = 3, detector.raft = 'R22': the exposure is covered if one of its detectors is
                where, where_params = where_mirror_sql(group.where, default_instrument=default, detectors=True)
            except NotInMirror as exc:
                raise Unknown(f"the mirror cannot answer its where expression ({exc})") from exc
            on_detectors = True
        except ValueError as exc:
            raise Unknown(f"its where expression does not parse ({exc})") from exc
        on_detectors = on_detectors or any(t.detector for t in tables)
        if on_detectors and not self.has_detectors(repo.pk):
            raise Unknown(f"the mirror of repo {repo.label} has no detectors (sync it)")
        conditions = [where]
        params: list[Any] = list(where_params)
        for table in tables:
            key_sql = "e.exposure_id" if table.key == "exposure" else "e.visit_id"
            if table.detector and on_detectors:
                sql, extra = _rows_in(["e.instrument", key_sql, "d.detector_id"], ["str", "int", "int"], table.rows)
            else:
                rows = sorted({r[:2] for r in table.rows})
                sql, extra = _rows_in(["e.instrument", key_sql], ["str", "int"], rows)
            conditions.append(sql)
            params.extend(extra)
        exposures = f"{Exposure._meta.db_table} e"
        if on_detectors:
            inner = " AND ".join(["d.repo_id = e.repo_id", "d.instrument = e.instrument", *conditions])
            selection = f"EXISTS (SELECT 1 FROM {Detector._meta.db_table} d WHERE {inner})"  # noqa: S608
        else:
            selection = " AND ".join(conditions)
        return (
            f"SELECT %s, e.instrument, e.exposure_id FROM {exposures} WHERE e.repo_id = %s AND {selection}",  # noqa: S608
            [group.pk, repo.pk, *params],
        )


def _record(group: Group, evaluator: _Evaluator) -> GroupCoverage:
    """Evaluate the group's present selection and replace its rows; the caller holds the group's row lock."""
    table = GroupExposure._meta.db_table
    GroupExposure.objects.filter(group=group).delete()
    try:
        select, params = evaluator.select_sql(group)
    except Unknown as exc:
        state, reason, count = CoverageState.UNKNOWN, str(exc), 0
    else:
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {table} (group_id, instrument, exposure) {select}", params)
            count = cursor.rowcount
        state, reason = CoverageState.RECORDED, ""
    coverage, _ = GroupCoverage.objects.update_or_create(
        group=group,
        defaults={
            "where": group.where,
            "data_id_table": group.data_id_table,
            "state": state,
            "reason": reason,
            "exposures": count,
        },
    )
    return coverage


def group_coverage_record(*, group_id: int, evaluator: _Evaluator | None = None) -> GroupCoverage | None:
    """Record the exposures a planned group covers (nothing to do if they are recorded for its present
    selection; None for a group not planned). Safe to run twice and concurrently: the group's row is locked
    while its rows are replaced."""
    evaluator = evaluator or _Evaluator()
    with transaction.atomic():
        group = (
            Group.objects.select_for_update(of=("self",))
            .select_related("step__campaign__butler_repo", "coverage")
            .filter(PLANNED, pk=group_id)
            .first()
        )
        if group is None:
            return None
        coverage = getattr(group, "coverage", None)
        if coverage is not None and (coverage.where, coverage.data_id_table) == (group.where, group.data_id_table):
            return coverage
        return _record(group, evaluator)


def campaign_coverage_record(*, campaign_id: int) -> dict[str, int]:
    """Record every pending group of a campaign, one short transaction each. Counts by state."""
    evaluator = _Evaluator()
    counts = {CoverageState.RECORDED.value: 0, CoverageState.UNKNOWN.value: 0}
    ids = list(pending_groups().filter(step__campaign_id=campaign_id).order_by("pk").values_list("pk", flat=True))
    for group_id in ids:
        coverage = group_coverage_record(group_id=group_id, evaluator=evaluator)
        if coverage is not None:
            counts[coverage.state] += 1
    return counts


def campaign_coverage_record_enqueue(campaign_id: int) -> None:
    """Send ``group_coverage_record`` for the campaign once the current transaction commits."""

    def send() -> None:
        from .tasks import group_coverage_record as task

        try:
            task.delay(campaign_id)
        except Exception:  # the broker is down: the management command (or the next launch) catches up
            logger.exception("Could not send group_coverage_record for campaign %s", campaign_id)

    transaction.on_commit(send)


def repo_coverage_reset(*, repo) -> int:
    """The mirror of ``repo`` changed: drop what its campaigns' groups were recorded to cover (they are
    pending meanwhile: the exposure page says so rather than show an old answer) and send the task that
    records them again, per campaign. Returns how many groups."""
    groups = Group.objects.filter(PLANNED, step__campaign__butler_repo=repo)
    campaign_ids = list(groups.order_by().values_list("step__campaign_id", flat=True).distinct())
    with transaction.atomic():
        dropped, _ = GroupCoverage.objects.filter(group__in=groups).delete()
        for campaign_id in campaign_ids:
            campaign_coverage_record_enqueue(campaign_id)
    return dropped


def on_mirror_changed(sender, *, repo, **kwargs) -> None:
    """Receiver of ``tagging.signals.mirror_changed`` (connected in ``CampaignsConfig.ready``)."""
    repo_coverage_reset(repo=repo)
