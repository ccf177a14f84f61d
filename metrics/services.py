"""Writes of the metrics app. For now one: the loop from QA back to the next campaign's selection."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from campaigns.models import Campaign
from core.errors import InputError
from core.roles import is_staff_member
from tagging.models import ButlerRepo, DataIdSetVersion
from tagging.selection.services import EmptySelection, selection_data_ids, selection_freeze

from .conditions import PER_CHOICES, gate_text, input_text, passes
from .ingest.formats import (
    FORMATS,
    FormatError,
    Measurement,
    bundle_measurements,
    flat_measurements,
    is_bad,
    load_bundle,
    read_records,
    sniff_format,
)
from .ingest.store import Ingestor, IngestReport, RunPlace
from .models import CheckState, GateResult, MetricValue, StepCheck, StepInputFreeze
from .selection import threshold_recipe
from .selectors import OPERATORS, MetricQuery


def _threshold_selection(
    *,
    user,
    query: MetricQuery,
    campaign: Campaign,
    operator: str,
    threshold: float,
    whole_exposures: bool,
    statistic: str = "",
) -> dict[str, Any]:
    """The selection recipe of the data IDs of ``campaign`` whose metric is < or > ``threshold`` with the query's
    other filters (staff only; the campaign must be one of the explorer's)."""
    if not is_staff_member(user):
        raise PermissionDenied("Only staff members can store selections.")
    if campaign.pk not in query.campaign_ids:
        raise InputError("The campaign to select from is not one of the explorer's campaigns.", field="campaign")
    return threshold_recipe(
        query=query,
        campaign=campaign,
        operator=operator,
        threshold=threshold,
        whole_exposures=whole_exposures,
        statistic=statistic,
    )


def _nothing_matched(query: MetricQuery, campaign: Campaign, operator: str, threshold: float) -> InputError:
    return InputError(
        f"No data ID of {campaign.name} has {query.metric} {OPERATORS[operator]} {threshold:g} with these "
        "filters; nothing was stored.",
        field="threshold",
    )


@transaction.atomic
def metric_selection_create(
    *,
    user,
    query: MetricQuery,
    campaign: Campaign,
    operator: str,
    threshold: float,
    name: str,
    reason: str,
    whole_exposures: bool = False,
    statistic: str = "",
) -> DataIdSetVersion:
    """Freeze the data IDs of ``campaign`` whose metric is < or > ``threshold`` (with the query's other filters)
    as a DataID set: a selection whose recipe is a ``metric`` term (``selection.threshold_recipe``), so the set's
    provenance is that recipe and it can be re-run and diffed like any frozen selection. The set can then be a
    later campaign's include or exclude list."""
    recipe = _threshold_selection(
        user=user,
        query=query,
        campaign=campaign,
        operator=operator,
        threshold=threshold,
        whole_exposures=whole_exposures,
        statistic=statistic,
    )
    try:
        return selection_freeze(user=user, recipe=recipe, name=name, reason=reason)
    except EmptySelection as exc:
        raise _nothing_matched(query, campaign, operator, threshold) from exc


@transaction.atomic
def metric_selection_reject_table(
    *,
    user,
    query: MetricQuery,
    campaign: Campaign,
    operator: str,
    threshold: float,
    name: str,
    reason: str,
    whole_exposures: bool = False,
    statistic: str = "",
):
    """The same selection as ``metric_selection_create``, stored as a *reject* tag table ("do not use these"):
    one row per data ID, checked against the registry by the tag-table service, whose purpose and first
    table events carry the recipe. A selection excludes it with a ``tag_table`` term."""
    from tagging.models import TagTableEvent
    from tagging.services.tagtables import tag_rows_upsert, tagtable_create

    recipe = _threshold_selection(
        user=user,
        query=query,
        campaign=campaign,
        operator=operator,
        threshold=threshold,
        whole_exposures=whole_exposures,
        statistic=statistic,
    )
    dimensions, records, recipe = selection_data_ids(user=user, recipe=recipe)
    if not records:
        raise _nothing_matched(query, campaign, operator, threshold)
    rule = f"{query.metric} {OPERATORS[operator]} {threshold:g} in campaign {campaign.name}"
    filters = ", ".join(f"{k}={v}" for k, v in query.filters().items())
    table = tagtable_create(
        user=user,
        repo_label=campaign.butler_repo_id,
        name=name,
        key_dimensions=dimensions,
        columns=[{"name": "rule", "type": "string", "description": "the metric selection that put the row here"}],
        polarity="reject",
        purpose=f"{reason}\n\nSelected where {rule}" + (f" ({filters})" if filters else "") + ".",
        description=f"Made from the metrics explorer: {rule}.",
    )
    # The recipe, as provenance, in the table's own event log (next to its 'created' event).
    TagTableEvent.objects.create(table=table, action="selected_from_metric", detail={"recipe": recipe}, user=user)
    tag_rows_upsert(user=user, table_id=table.pk, rows=[{**record, "rule": rule} for record in records], reason=reason)
    table.refresh_from_db()
    return table


logger = logging.getLogger(__name__)
_SOURCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$")
BUNDLE_MAX_BYTES = 10 * 1024 * 1024


# --------------------------------------------------------------------------------------
# Ingest
# --------------------------------------------------------------------------------------


def campaign_runs(campaign_id: int) -> dict[str, RunPlace]:
    """The RUN collections of a campaign's attempts, with the step and group each belongs to."""
    from campaigns.models import Submission

    rows = Submission.objects.filter(group__step__campaign_id=campaign_id).values_list(
        "run_collection", "group__step_id", "group_id"
    )
    return {run: RunPlace(campaign_id, step_id, group_id) for run, step_id, group_id in rows if run}


def _flat_stream(stream: IO[bytes], *, action: str, units: Mapping[str, str], run: str) -> Iterator[Measurement]:
    for where, record in read_records(stream):
        problem = is_bad(record)
        if problem:
            yield Measurement(where=where, metric="", value=None, unit="", data_id={}, problem=problem)
            continue
        if run and isinstance(record, dict) and not record.get("run"):
            record = {**record, "run": run}
        yield from flat_measurements(record, where, action=action, units=units)


def _flat_records(records: list[Any], *, action: str, units: Mapping[str, str], run: str) -> Iterator[Measurement]:
    for i, record in enumerate(records):
        if run and isinstance(record, dict) and not record.get("run"):
            record = {**record, "run": run}
        yield from flat_measurements(record, f"index {i}", action=action, units=units)


def _clean_request(
    *, user, repo_label: str, campaign_id: int | None, run: str, source: str
) -> tuple[ButlerRepo, dict[str, RunPlace] | None]:
    from campaigns.models import CHANGE
    from campaigns.selectors import access_campaign

    if not is_staff_member(user):
        raise PermissionDenied("Only staff members can ingest metrics.")
    campaign = access_campaign(user, campaign_id, CHANGE) if campaign_id is not None else None
    errors: dict[str, str] = {}
    if campaign is None and not source:
        errors["source"] = "Say where the values come from: a campaign and run, or an outside source label."
    if campaign is not None and source:
        errors["source"] = "Give a campaign (and run) or a source label, not both."
    if source and (not _SOURCE.match(source) or len(source) > 200):
        errors["source"] = f"{source!r} is not a source label (letters, digits, '_', '.', ':', '/', '-')."
    repo_label = repo_label or (campaign.butler_repo_id if campaign is not None else "")
    repo = ButlerRepo.objects.filter(label=repo_label).first() if repo_label else None
    if repo is None:
        known = ", ".join(ButlerRepo.objects.values_list("label", flat=True)) or "none configured"
        errors["repo"] = f"Unknown Butler repo {repo_label!r} (known: {known})." if repo_label else "Name the repo."
    elif campaign is not None and campaign.butler_repo_id != repo.label:
        errors["repo"] = f"Campaign {campaign.name} runs on repo {campaign.butler_repo_id}, not {repo.label}."
    runs = campaign_runs(campaign.pk) if campaign is not None else None
    if campaign is not None and runs is not None and run and run not in runs:
        errors["run"] = f"{run!r} is not a RUN collection of campaign {campaign.name}."
    if errors:
        raise ValidationError(errors)
    assert repo is not None
    return repo, runs


@transaction.atomic
def metric_values_ingest(
    *,
    user,
    repo_label: str = "",
    stream: IO[bytes] | None = None,
    records: list[Any] | None = None,
    bundle: Mapping[str, Any] | None = None,
    fmt: str = "",
    data_id: Mapping[str, Any] | None = None,
    campaign_id: int | None = None,
    run: str = "",
    source: str = "",
    action: str = "",
    units: Mapping[str, str] | None = None,
    dataset_type: str = "",
    dataset_id: str = "",
) -> IngestReport:
    """Store metric values from a file (``stream``), flat ``records`` or one ``bundle``, tied to a campaign's run
    or to an outside ``source`` label.

    Values that cannot be placed (unknown data ID, unit or run; not a number) are listed in the report and the
    rest are stored; the same measurement twice is stored once. Input that cannot be read at all (not JSON, not
    one of the formats) stores nothing and raises ``InputError`` naming where.
    """
    repo, runs = _clean_request(user=user, repo_label=repo_label, campaign_id=campaign_id, run=run, source=source)
    if fmt and fmt not in FORMATS:
        raise ValidationError({"format": f"{fmt!r} is not one of: {', '.join(FORMATS)}."})
    if stream is not None and not fmt:
        fmt = sniff_format(stream)
    if bundle is not None:
        fmt = "bundle"
    elif records is not None:
        fmt = "flat"
    try:
        if fmt == "bundle":
            if stream is not None:
                bundle = load_bundle(stream, BUNDLE_MAX_BYTES)
            if not data_id:
                raise ValidationError({"data_id": "A metric bundle needs the data ID it measures, e.g. exposure=..."})
            if runs is not None and not run:
                raise ValidationError({"run": "Say which RUN collection of the campaign produced this bundle."})
            measurements: Iterator[Measurement] = bundle_measurements(
                bundle, data_id=data_id, run=run, dataset_type=dataset_type, dataset_id=dataset_id
            )
        elif stream is not None:
            measurements = _flat_stream(stream, action=action, units=units or {}, run=run)
        else:
            measurements = _flat_records(records or [], action=action, units=units or {}, run=run)
        # Identifier fields given beside flat records (--data-id) fill what a record leaves out.
        if data_id and fmt == "flat":
            measurements = (_with_defaults(m, data_id) for m in measurements)
        ingestor = Ingestor(repo=repo, source=source, runs=runs, campaign_id=campaign_id)
        report = ingestor.run(measurements)
    except FormatError as exc:
        raise InputError(
            f"The input could not be read ({exc.where}): {exc}; nothing was stored.",
            [{"where": exc.where, "key": "", "message": str(exc)}],
            1,
            field="file",
        ) from exc
    if report.read == 0:
        raise InputError("The input holds no metric value; nothing was stored.", field="file")
    return report


def _with_defaults(m: Measurement, data_id: Mapping[str, Any]) -> Measurement:
    m.data_id = {**data_id, **m.data_id}
    return m


def metrics_ingest_group(*, group_id: int) -> IngestReport:
    """Ingest the metric bundles of a group's RUN collections (every started attempt), tied to the campaign, step,
    group, run and dataset. Safe to run twice: values are upserted. Called by the ``group_metrics_ingest`` task."""
    from campaigns.choices import SubmissionKind, SubmissionState
    from campaigns.models import Group
    from lsst_adapter.metrics import metric_datasets
    from lsst_adapter.registry import RepoError

    group = Group.objects.select_related("step__campaign__butler_repo").get(pk=group_id)
    campaign = group.step.campaign
    runs = campaign_runs(campaign.pk)
    started = list(
        group.submissions.filter(
            state__in=[SubmissionState.SUCCEEDED, SubmissionState.FAILED, SubmissionState.LOST]
        ).order_by("number")
    )
    # A retry starts afresh (its run holds everything again); rescues add to the attempt before them. Only the
    # latest fresh attempt and its rescues count, so a retried group's values are not counted twice.
    fresh = [i for i, s in enumerate(started) if s.kind != SubmissionKind.RESCUE]
    attempts = started[fresh[-1] :] if fresh else started
    report = IngestReport()
    for submission in attempts:

        def measurements(run: str = submission.run_collection) -> Iterator[Measurement]:
            for dataset in metric_datasets(campaign.butler_repo.config_uri, run):
                yield from bundle_measurements(
                    dataset.bundle,
                    data_id=dataset.data_id,
                    run=dataset.run,
                    dataset_type=dataset.dataset_type,
                    dataset_id=dataset.dataset_id,
                )

        try:
            with transaction.atomic():
                ingestor = Ingestor(repo=campaign.butler_repo, runs=runs, campaign_id=campaign.pk)
                report.merge(ingestor.run(measurements()))
        except RepoError as exc:
            # A failed attempt may have no RUN collection at all: nothing to ingest from it.
            report.reject(submission.run_collection, "run", str(exc))
    return report


def group_outputs_ingest(sender, *, group_id: int, status: str = "", **kwargs) -> None:
    """Receiver of ``campaigns.signals.group_outputs_final``: a succeeded group, or a failed one accepted as it is
    (its successful quanta's bundles are in its runs like a succeeded group's), gets its metrics ingested."""
    group_metrics_ingest_enqueue(group_id)


def group_metrics_ingest_enqueue(group_id: int) -> None:
    """Send ``group_metrics_ingest`` once the current transaction commits."""

    def send() -> None:
        from .tasks import group_metrics_ingest

        group_metrics_ingest.delay(group_id)

    transaction.on_commit(send)


# --------------------------------------------------------------------------------------
# Step checks: quality gates and metric-conditioned inputs
# --------------------------------------------------------------------------------------


def metric_filter(name: str) -> Q:
    """A metric given as its stored name or its last part (``psf_fwhm`` matches ``psfMetrics.psf_fwhm``)."""
    return Q(metric=name) | Q(metric__endswith="." + name)


def _aggregate(statistic: str):
    """The SQL aggregate of a statistic over ``value`` (nulls are skipped by SQL aggregates)."""
    from django.db.models import Aggregate as _Agg
    from django.db.models import Avg, Count, F, FloatField, Max, Min

    class PercentileCont(_Agg):
        function = "percentile_cont"
        template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
        output_field = FloatField()

        def as_sqlite(self, compiler, connection, **extra):
            # core.sqlite_functions registers percentile_cont(fraction, value) as an SQLite aggregate.
            return self.as_sql(compiler, connection, template="%(function)s(%(fraction)s, %(expressions)s)", **extra)

    if statistic == "median":
        return PercentileCont(F("value"), fraction=0.5)
    if statistic.startswith("p") and statistic[1:].isdigit():
        return PercentileCont(F("value"), fraction=int(statistic[1:]) / 100)
    if statistic == "mean":
        return Avg("value")
    if statistic == "min":
        return Min("value")
    if statistic == "max":
        return Max("value")
    if statistic == "count":
        return Count("value")
    kind, _, limit = statistic.partition(":")
    from django.db.models import Case, Value, When

    hit = When(value__lt=float(limit), then=Value(1.0)) if kind == "fraction_below" else None
    if kind == "fraction_above":
        hit = When(value__gt=float(limit), then=Value(1.0))
    if hit is None:
        raise ValueError(f"unknown statistic {statistic!r}")
    return Avg(Case(hit, default=Value(0.0), output_field=FloatField()))


def step_check_request(step) -> bool:
    """When a step succeeds: if it has quality gates or feeds a metric-conditioned input, mark its check pending
    (dependent steps wait) and send ``step_check_run`` on commit. Returns whether a check was requested."""
    from campaigns.models import Step

    feeds = Step.objects.filter(campaign_id=step.campaign_id, metric_input__step=step.name).exists()
    if not step.quality_gates and not feeds:
        return False
    StepCheck.objects.update_or_create(
        step=step, defaults={"state": CheckState.PENDING, "passed": None, "error": "", "evaluated": None}
    )

    def send() -> None:
        from .tasks import step_check_run

        step_check_run.delay(step.pk)

    transaction.on_commit(send)
    return True


def step_hold(step) -> tuple[str, str]:
    """Whether a waiting step whose dependencies succeeded may start: ('', '') yes; ('pending', why) not yet;
    ('hold', why) only after a staff member approves (a failed gate or a check that could not be done)."""
    deps = list(step.depends_on.all())
    checks = {c.step_id: c for c in StepCheck.objects.filter(step__in=deps)}
    reasons = []
    for dep in deps:
        check = checks.get(dep.pk)
        if check is None:
            continue
        if check.state in (CheckState.PENDING, CheckState.RUNNING):
            return "pending", f"waiting for the metric checks of step {dep.name}"
        if check.state == CheckState.FAILED:
            reasons.append(f"the metric checks of step {dep.name} could not be done: {check.error}")
        for result in GateResult.objects.filter(step=dep, passed=False):
            reasons.append(f"quality gate of step {dep.name} failed: {result.text} (measured {_fmt(result.measured)})")
    if reasons:
        return "hold", "; ".join(reasons)
    return "", ""


def _fmt(value: float | None) -> str:
    return "nothing" if value is None else f"{value:.4g}"


def _evaluate_gates(step) -> bool:
    GateResult.objects.filter(step=step).delete()
    all_passed = True
    for position, gate in enumerate(step.quality_gates or []):
        values = MetricValue.objects.filter(metric_filter(gate["metric"]), step=step)
        names = sorted(set(values.values_list("metric", flat=True).distinct()))
        result = values.filter(value__isnull=False).aggregate(
            measured=_aggregate(gate["statistic"]), count=_count_values()
        )
        measured = result["measured"]
        ok = passes(measured, gate["op"], gate["threshold"])
        all_passed &= ok
        GateResult.objects.create(
            step=step,
            position=position,
            gate=gate,
            text=gate_text(gate)[:300],
            metric=", ".join(names)[:200],
            count=result["count"] or 0,
            measured=measured,
            passed=ok,
        )
    return all_passed


def _count_values():
    from django.db.models import Count

    return Count("value")


def _freeze_input(upstream, dependent) -> StepInputFreeze:
    """Evaluate ``dependent.metric_input`` over ``upstream``'s values and freeze the selection as a DataID set."""
    from campaigns.execution.services import step_input_table_set
    from tagging.dataids.writers import ecsv_text
    from tagging.models import SetVisibility
    from tagging.services.dataids import UploadSource, dataidset_create

    cond = dependent.metric_input
    campaign = dependent.campaign
    dims = list(PER_CHOICES[cond["per"]])
    per_unit = (
        MetricValue.objects.filter(metric_filter(cond["metric"]), step=upstream, value__isnull=False)
        .exclude(**{f"{d}__isnull": True for d in dims})
        .values(*dims)
        .annotate(measured=_aggregate(cond["statistic"]))
        .order_by(*dims)
    )
    selected, rejected = [], 0
    for row in per_unit.iterator(chunk_size=5000):
        if passes(row["measured"], cond["op"], cond["threshold"]):
            selected.append({d: row[d] for d in dims})
        else:
            rejected += 1
    text = input_text(cond)
    provenance = f"metric condition '{text}' of campaign {campaign.name}, step {dependent.name}"
    version = None
    if selected:
        visibility = SetVisibility.PUBLIC if campaign.visibility == "public" else SetVisibility.PRIVATE
        version = dataidset_create(
            user=campaign.owner,
            repo_label=campaign.butler_repo_id,
            name=f"{campaign.name}.{dependent.name}.input"[:100],
            reason=f"Input of step {dependent.name} of campaign {campaign.name}: {text}.",
            source=UploadSource(kind="records", records=selected, dimensions=dims, format="metric-condition"),
            visibility=visibility,
            comment=f"Frozen from {provenance} ({len(selected)} selected, {rejected} rejected).",
        )
    folder = Path(settings.CM_SUBMIT_ROOT) / "inputs" / str(campaign.pk)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{dependent.name}-{'v' + str(version.number) if version else 'empty'}.ecsv"
    rows = [tuple(r[d] for d in dims) for r in selected]
    path.write_text(ecsv_text(dims, rows, meta={"condition": text, "campaign": campaign.name}))
    freeze, _ = StepInputFreeze.objects.update_or_create(
        step=dependent,
        defaults={
            "condition": cond,
            "text": text[:300],
            "version": version,
            "selected": len(selected),
            "rejected": rejected,
            "table_path": str(path),
        },
    )
    step_input_table_set(
        step_id=dependent.pk,
        path=str(path),
        comment=f"input frozen from {provenance}: {len(selected)} {cond['per']}(s) selected, {rejected} rejected",
    )
    return freeze


def step_check_run(*, step_id: int) -> StepCheck | None:
    """Ingest the step's metrics, evaluate its gates and freeze the inputs that depend on it; then let the
    executor move on (dependent steps start, or wait for approval if a gate failed). Safe to run twice: the
    check is claimed with a conditional update."""
    import os
    import socket

    import psutil

    from campaigns.execution.state import record_history, roll_up
    from campaigns.models import Step

    me = os.getpid()
    claimed = StepCheck.objects.filter(step_id=step_id, state=CheckState.PENDING).update(
        state=CheckState.RUNNING,
        claimed=timezone.now(),
        worker_host=socket.gethostname(),
        worker_pid=me,
        worker_pid_started=psutil.Process(me).create_time(),
    )
    if claimed != 1:
        return None
    step = Step.objects.select_related("campaign__butler_repo", "campaign__owner").get(pk=step_id)
    campaign = step.campaign
    state, passed, error = CheckState.DONE, True, ""
    try:
        ingested = IngestReport()
        for group_id in step.groups.values_list("pk", flat=True):
            ingested.merge(metrics_ingest_group(group_id=group_id))
        with transaction.atomic():
            passed = _evaluate_gates(step)
            dependents = Step.objects.filter(campaign=campaign, metric_input__step=step.name)
            freezes = [_freeze_input(step, dependent) for dependent in dependents]
    except Exception as exc:  # the check must end in a state people see, whatever went wrong
        logger.exception("Metric checks of step %s failed", step)
        state, passed, error = CheckState.FAILED, False, f"{type(exc).__name__}: {exc}"[:4000]
        freezes = []
    with transaction.atomic():
        StepCheck.objects.filter(step_id=step_id).update(
            state=state, passed=passed, error=error, evaluated=timezone.now()
        )
        lines = [
            f"{r.text}: measured {_fmt(r.measured)} over {r.count} values → {'pass' if r.passed else 'FAIL'}"
            for r in GateResult.objects.filter(step=step)
        ]
        lines += [f"input of {f.step.name}: {f.text} → {f.selected} selected, {f.rejected} rejected" for f in freezes]
        if error:
            lines.append(f"could not evaluate: {error}")
        record_history(
            campaign=campaign,
            actor=None,
            changes={f"step {step.name} metric checks": [None, "passed" if passed else "failed"]},
            comment="\n".join(lines),
        )
    roll_up(campaign.pk)
    return StepCheck.objects.get(step_id=step_id)


def step_checks_reconcile() -> int:
    """Make the checks whose worker died while evaluating them pending again and send them once more (the
    evaluation is safe to repeat: ingest upserts, gates and input freezes are rewritten). Returns how many."""
    from functools import partial

    from campaigns.execution.runner import process_alive

    from .tasks import step_check_run as step_check_task

    requeued = 0
    for check in StepCheck.objects.filter(state=CheckState.RUNNING):
        since = check.claimed or check.requested
        if process_alive(
            host=check.worker_host, pid=check.worker_pid, pid_started=check.worker_pid_started, since=since
        ):
            continue
        # Conditional: another reconciler (or the worker itself, finishing) may have moved it meanwhile.
        if StepCheck.objects.filter(pk=check.pk, state=CheckState.RUNNING, claimed=check.claimed).update(
            state=CheckState.PENDING, error=f"re-queued: the worker {check.worker_host}:{check.worker_pid} died"
        ):
            transaction.on_commit(partial(step_check_task.delay, check.step_id))
            requeued += 1
    return requeued
