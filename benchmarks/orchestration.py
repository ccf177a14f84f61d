"""Orchestration overhead of a campaign of 1,000 groups, with BPS's own cost left out.

The executor is measured in one process, on the benchmark's PostgreSQL database and Butler repo
(see ``run.py``). A campaign whose one step (``drp.yaml#step1``) is split by exposure into exactly
``GROUPS`` groups of ``GROUP_SIZE`` exposures (x 9 detectors = 90 quanta each) runs with
``bps.wms = "noop"`` (``lsst_adapter.bps_noop.NoopService``). As in the tests, "noop" is set on the
campaign with an ORM update: the campaign definition only accepts the real WMS plugins.

Phases (each timed once, wall clock, ``time.perf_counter``):

1. planning: ``campaign_launch`` (registry query of the selected exposures, 1,000 groups planned and
   saved, step started, groups made ready). ``group_run.delay`` is replaced by a counter, so no task
   is sent.
2. submission bookkeeping: ``runner.run_group(group_id=...)`` for every group, in this process
   (claim, submit YAML rendered and written, output-run existence check, prepared recorded,
   submitted recorded). ``bps.prepare``/``bps.run_prepared`` are replaced, for this phase only, by
   functions returning ready-made ``PreparedWorkflow``/``SubmitResult`` objects of the real types,
   as the no-op WMS produces them (90 quanta, run id = submit directory, state SUCCEEDED, not
   finished: the path of a remote WMS). So what is timed is the campaign manager's code only.
3. one status poll of all groups: ``runner.poll_running_groups()`` with ``bps.report`` replaced by a
   ready-made ``GroupProgress`` of the real type: (a) the WMS says every run is still running
   (progress recorded), then (b) it says every run succeeded, as the no-op WMS does (results
   recorded, roll-up, step and campaign succeed, CHAINED collections defined). Also the run-status
   API (``GET /api/v1/campaigns/{id}/run-status/``) rendered through the DRF view in-process, with
   the 1,000 groups running.

Separately, on ``REAL_GROUPS`` groups of another campaign, the real path through ctrl_bps with the
real no-op WMS: ``run_group`` with the real ``bps.prepare`` (``pipetask qgraph`` in a subprocess,
clustering, generic workflow, NoopService.prepare) and ``bps.run_prepared`` (NoopService.submit),
then ``bps.report("noop", run_id)``. Their times are BPS's own cost, reported, not counted.
"""

from __future__ import annotations

import dataclasses
import shutil
import statistics
import sys
import time
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

GROUPS = 1_000
GROUP_SIZE = 10  # exposures per group (x 9 detectors, all with raws: 90 quanta per group)
REAL_GROUPS = 5
GOAL_MS_PER_GROUP = 20.0
CAMPAIGN_PREFIX = "bench-orch-"
# The first 10,000 exposures of the first night: every one has raws for all 9 detectors.
DATA_QUERY = "exposure.day_obs = 20260101 AND exposure.seq_num <= {n}"


class _QueryCounter:
    """A connection execute wrapper counting SQL statements (cheap, unlike CaptureQueriesContext).

    ``commits``: transactions that wrote, each a WAL flush: the commits of ``transaction.atomic``
    blocks, plus every writing statement run outside one (autocommit: its own transaction).
    """

    _WRITES = ("INSERT", "UPDATE", "DELETE", "WITH")

    def __init__(self) -> None:
        self.count = 0
        self.commits = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        if not context["connection"].in_atomic_block and sql.lstrip().upper().startswith(self._WRITES):
            self.commits += 1
        return execute(sql, params, many, context)


@contextmanager
def _counting():
    from django.db import connection

    counter = _QueryCounter()
    real_commit = connection._commit

    def commit():
        counter.commits += 1
        return real_commit()

    connection._commit = commit
    try:
        with connection.execute_wrapper(counter):
            yield counter
    finally:
        del connection._commit  # the class's method again


@contextmanager
def _patched(obj: Any, name: str, value: Any):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def _cleanup(repo_dir: str) -> None:
    """Remove earlier benchmark campaigns, their submit directories and their CHAINED collections."""
    from django.conf import settings
    from lsst.daf.butler import Butler, CollectionType, MissingCollectionError

    from campaigns.models import Campaign

    names = list(Campaign.objects.filter(name__startswith=CAMPAIGN_PREFIX).values_list("name", flat=True))
    Campaign.objects.filter(name__startswith=CAMPAIGN_PREFIX).delete()
    for name in names:
        shutil.rmtree(Path(settings.CM_SUBMIT_ROOT) / name, ignore_errors=True)
    butler = Butler.from_config(repo_dir, writeable=True)
    try:
        chains = list(butler.collections.query(f"u/*/{CAMPAIGN_PREFIX}*", collection_types={CollectionType.CHAINED}))
        for chain in sorted(chains, key=len):  # the campaign's chain first (it holds the step's)
            with suppress(MissingCollectionError):
                butler.collections.x_remove(chain)
    finally:
        butler.close()


def _make_campaign(user, name: str, *, split: dict[str, Any], exposures: int):
    from campaigns import services
    from campaigns.execution import step_split_set
    from campaigns.models import Campaign

    campaign = services.campaign_create(
        user=user,
        data={
            "name": name,
            "campaign_type": "adhoc",
            "reason": "benchmark: orchestration overhead of the executor",
            "butler_repo": "bench",
            "pipeline": "demo/pipelines/drp.yaml",
            "input_collections": ["DemoCam/raw/all"],
            "data_query": DATA_QUERY.format(n=exposures),
            "steps": [{"name": "step1", "pipeline_subset": "step1"}],
        },
    )
    # "noop" is the adapter's measuring WMS, not a choice the definition offers: set it directly (as the tests do).
    Campaign.objects.filter(pk=campaign.pk).update(bps={"wms": "noop", "compute_site": "local"})
    step_split_set(user=user, step_id=campaign.steps.get().pk, split=split)
    return campaign


def _noop_stubs():
    """``prepare``/``run_prepared`` replacements returning what the no-op WMS returns, ready-made."""
    from lsst_adapter import bps

    quanta = GROUP_SIZE * 9
    template = bps.PreparedWorkflow(
        run_name="",
        submit_dir="",
        qgraph_file="",
        quanta=quanta,
        quanta_by_task={"step1": quanta},
        jobs=quanta + 2,
        wms_service_class=bps.WMS_SERVICE_CLASSES["noop"],
        butler_config="",
        output="",
        output_run="",
        prepare_seconds=0.0,
    )

    def prepare(submit_yaml_path, *, env_extra=None):
        submit_dir = str(Path(submit_yaml_path).with_suffix(""))
        name = Path(submit_dir).name
        return dataclasses.replace(
            template, run_name=name, submit_dir=submit_dir, qgraph_file=f"{submit_dir}/{name}.qg"
        )

    def run_prepared(prepared, *, env_extra=None):
        return bps.SubmitResult(
            run_name=prepared.run_name,
            run_id=prepared.submit_dir,
            submit_dir=prepared.submit_dir,
            qgraph_file=prepared.qgraph_file,
            quanta=prepared.quanta,
            state="SUCCEEDED",
            finished=False,
        )

    return prepare, run_prepared


def _report_stub(state: str):
    """``bps.report`` replacement: what the no-op WMS reports (jobs), all in ``state``."""
    from lsst_adapter import bps

    quanta = GROUP_SIZE * 9
    done = state == "SUCCEEDED"
    progress = bps.GroupProgress(
        total=quanta,
        succeeded=quanta if done else 0,
        running=0 if done else quanta,
        state=state,
        unit="jobs",
        by_task={
            "step1": {"total": quanta, "succeeded": quanta if done else 0, "failed": 0,
                      "running": 0 if done else quanta, "pending": 0, "blocked": 0},
            "pipetaskInit": {"total": 1, "succeeded": 1, "failed": 0, "running": 0, "pending": 0, "blocked": 0},
        },
        finished=done,
    )  # fmt: skip

    def report(wms, run_id, *, service_class=None, hist=7):
        return progress

    return report


def _run_status(user, campaign_id: int) -> tuple[float, int, int]:
    """One GET of the run-status API through the DRF view (rendered to JSON): seconds, bytes, queries."""
    from rest_framework.test import APIRequestFactory, force_authenticate

    from campaigns.api.views import CampaignViewSet

    view = CampaignViewSet.as_view({"get": "run_status"})
    request = APIRequestFactory().get(f"/api/v1/campaigns/{campaign_id}/run-status/")
    force_authenticate(request, user=user)
    with _counting() as counter:
        start = time.perf_counter()
        response = view(request, pk=str(campaign_id))
        response.render()
        seconds = time.perf_counter() - start
    assert response.status_code == 200, response.status_code
    return seconds, len(response.content), counter.count


def _phase(seconds: float, queries: int, groups: int = GROUPS, **extra: Any) -> dict[str, Any]:
    print(f"    {seconds:8.2f} s  {1000 * seconds / groups:7.2f} ms/group  {queries:7d} SQL", file=sys.stderr)
    return {"seconds": seconds, "ms_per_group": 1000 * seconds / groups, "queries": queries, **extra}


def _counted(seconds: float, counter: _QueryCounter, **extra: Any) -> dict[str, Any]:
    return _phase(seconds, counter.count, commits=counter.commits, **extra)


def run(repo_dir: str, user_name: str, profile: str | None = None) -> dict[str, Any]:
    """The whole benchmark, in this (fresh) process; returns the phases' times and counts."""
    from django.contrib.auth import get_user_model

    from campaigns import tasks
    from campaigns.choices import CampaignStatus, GroupStatus, SubmissionState
    from campaigns.execution import campaign_launch, runner
    from campaigns.models import Group, Submission
    from lsst_adapter import bps
    from lsst_adapter.registry import open_butler

    user = get_user_model().objects.get(username=user_name)
    _cleanup(repo_dir)
    open_butler(repo_dir)  # a running worker has its cached Butler open already
    sent: list[int] = []
    out: dict[str, Any] = {"groups": GROUPS, "group_size": GROUP_SIZE, "quanta_per_group": GROUP_SIZE * 9}
    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)

    with _patched(tasks.group_run, "delay", lambda group_id, *a, **k: sent.append(group_id)):
        # --- the big campaign -------------------------------------------------------------------
        campaign = _make_campaign(
            user, f"{CAMPAIGN_PREFIX}{GROUPS}", split={"by": "exposure", "max_size": GROUP_SIZE},
            exposures=GROUPS * GROUP_SIZE,
        )  # fmt: skip

        # 1. planning
        if profiler and profile == "planning":
            profiler.start()
        with _counting() as counter:
            start = time.perf_counter()
            campaign_launch(user=user, campaign_id=campaign.pk, comment="benchmark")
            seconds = time.perf_counter() - start
        if profiler and profile == "planning":
            profiler.stop()
        groups = list(Group.objects.filter(step__campaign=campaign).order_by("position").values_list("pk", flat=True))
        assert len(groups) == GROUPS, len(groups)
        assert sorted(sent) == sorted(groups), (len(sent), len(groups))
        out["planning"] = _counted(seconds, counter, sent=len(sent))

        # 2. submission bookkeeping, with the WMS calls answered by ready-made no-op results
        prepare, run_prepared = _noop_stubs()
        results: dict[str, int] = {}
        with _patched(bps, "prepare", prepare), _patched(bps, "run_prepared", run_prepared):
            if profiler and profile == "submission":
                profiler.start()
            with _counting() as counter:
                start = time.perf_counter()
                for group_id in groups:
                    result = runner.run_group(group_id=group_id, worker_name="bench@localhost")
                    results[result] = results.get(result, 0) + 1
                seconds = time.perf_counter() - start
            if profiler and profile == "submission":
                profiler.stop()
        assert results == {"submitted": GROUPS}, results
        assert (
            Submission.objects.filter(group__step__campaign=campaign, state=SubmissionState.RUNNING).count() == GROUPS
        )
        out["submission"] = _counted(seconds, counter)

        # 3. the run-status API with every group running (3 calls: first, then the median of all)
        calls = [_run_status(user, campaign.pk) for _ in range(3)]
        out["run_status"] = _phase(
            statistics.median(c[0] for c in calls), calls[0][2], runs=[round(c[0], 4) for c in calls],
            bytes=calls[0][1],
        )  # fmt: skip

        # 3a. one poll while every run is still running: progress recorded for each group
        with _patched(bps, "report", _report_stub("RUNNING")), _counting() as counter:
            start = time.perf_counter()
            polled = runner.poll_running_groups()
            seconds = time.perf_counter() - start
        assert polled == {"polled": GROUPS, "finished": 0}, polled
        out["poll_running"] = _counted(seconds, counter)

        # 3b. one poll where every run has succeeded (the no-op WMS's answer): results recorded, roll-up
        with _patched(bps, "report", _report_stub("SUCCEEDED")):
            if profiler and profile == "poll":
                profiler.start()
            with _counting() as counter:
                start = time.perf_counter()
                polled = runner.poll_running_groups()
                seconds = time.perf_counter() - start
            if profiler and profile == "poll":
                profiler.stop()
        assert polled == {"polled": GROUPS, "finished": GROUPS}, polled
        campaign.refresh_from_db()
        statuses = set(Group.objects.filter(step__campaign=campaign).values_list("status", flat=True))
        assert statuses == {GroupStatus.SUCCEEDED}, statuses
        out["poll_finished"] = _counted(seconds, counter, campaign_status=campaign.status)
        assert campaign.status == CampaignStatus.SUCCEEDED, campaign.status

        total = out["planning"]["seconds"] + out["submission"]["seconds"] + out["poll_finished"]["seconds"]
        out["total"] = _phase(
            total,
            sum(out[k]["queries"] for k in ("planning", "submission", "poll_finished")),
            commits=sum(out[k]["commits"] for k in ("planning", "submission", "poll_finished")),
        )

        # --- BPS's own cost: the real no-op WMS through ctrl_bps, on a few groups ----------------
        real = _make_campaign(
            user, f"{CAMPAIGN_PREFIX}real", split={"by": "exposure", "max_size": GROUP_SIZE},
            exposures=REAL_GROUPS * GROUP_SIZE,
        )  # fmt: skip
        campaign_launch(user=user, campaign_id=real.pk, comment="benchmark: real no-op WMS")
        real_groups = list(Group.objects.filter(step__campaign=real).order_by("position").values_list("pk", flat=True))
        assert len(real_groups) == REAL_GROUPS, len(real_groups)
        timing: dict[str, list[float]] = {"prepare": [], "run_prepared": [], "report": [], "run_group": []}
        real_prepare, real_run_prepared, real_report = bps.prepare, bps.run_prepared, bps.report

        def timed(name, fn):
            def wrapper(*args, **kwargs):
                start = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    timing[name].append(time.perf_counter() - start)

            return wrapper

        with (
            _patched(bps, "prepare", timed("prepare", real_prepare)),
            _patched(bps, "run_prepared", timed("run_prepared", real_run_prepared)),
            _patched(bps, "report", timed("report", real_report)),
        ):
            quanta = []
            for group_id in real_groups:
                start = time.perf_counter()
                result = runner.run_group(group_id=group_id, worker_name="bench@localhost")
                timing["run_group"].append(time.perf_counter() - start)
                assert result == "submitted", result
                quanta.append(Submission.objects.get(group_id=group_id).quanta_total)
            polled = runner.poll_running_groups()
        assert polled == {"polled": REAL_GROUPS, "finished": REAL_GROUPS}, polled
        real.refresh_from_db()
        ours = [
            g - p - r for g, p, r in zip(timing["run_group"], timing["prepare"], timing["run_prepared"], strict=True)
        ]
        out["real_noop"] = {
            "groups": REAL_GROUPS,
            "quanta": quanta,
            "campaign_status": real.status,
            "prepare_s": [round(x, 3) for x in timing["prepare"]],
            "run_prepared_s": [round(x, 4) for x in timing["run_prepared"]],
            "report_s": [round(x, 4) for x in timing["report"]],
            "run_group_s": [round(x, 3) for x in timing["run_group"]],
            "ours_s": [round(x, 4) for x in ours],
            "median_prepare_s": statistics.median(timing["prepare"]),
            "median_run_prepared_s": statistics.median(timing["run_prepared"]),
            "median_report_s": statistics.median(timing["report"]),
            "median_ours_s": statistics.median(ours),
        }
    if profiler:
        Path(profile_path := f"/tmp/orchestration-{profile}.txt").write_text(
            profiler.output_text(unicode=False, color=False, show_all=False)
        )
        profiler.write_html(profile_path.replace(".txt", ".html"))
        out["profile"] = profile_path
    _cleanup(repo_dir)
    return out


# --- report ---------------------------------------------------------------------------------------

LABELS = {
    "planning": "(1) planning: `campaign_launch` (1,000 groups planned, saved, made ready)",
    "submission": "(2) submission bookkeeping: `run_group` x 1,000 (WMS calls answered ready-made)",
    "poll_finished": "(3) one status poll of all groups: `poll_running_groups`, every run succeeded",
    "total": "**overhead: (1) + (2) + (3)**",
    "poll_running": "(3a) a poll while every run is still running (progress only)",
    "run_status": "(3b) `GET /api/v1/campaigns/{id}/run-status/`, 1,000 groups running (one call)",
}


def table(runs: list[dict[str, Any]]) -> str:
    """Markdown rows of the phases (median over runs), against the goal."""
    lines = [
        "| phase | runs (s) | median (s) | per group (ms) | SQL statements | commits | goal |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, label in LABELS.items():
        seconds = [r[key]["seconds"] for r in runs]
        med = statistics.median(seconds)
        per = statistics.median(r[key]["ms_per_group"] for r in runs)
        queries = runs[-1][key]["queries"]
        goal = ""
        if key == "total":
            goal = f"{GOAL_MS_PER_GROUP:.0f} ms/group: {'met' if per < GOAL_MS_PER_GROUP else '**not met**'}"
        per_text = f"{per:.1f}" if key != "run_status" else f"({per:.2f})"
        commits = runs[-1][key].get("commits")  # transactions that wrote (not counted for the read-only API)
        commits_text = "" if commits is None else f"{commits:,} ({commits / GROUPS:.2f}/group)"
        lines.append(
            f"| {label} | {', '.join(f'{s:.2f}' for s in seconds)} | {med:.2f} | {per_text} "
            f"| {queries:,} ({queries / GROUPS:.0f}/group) | {commits_text} | {goal} |"
        )
    real = [r["real_noop"] for r in runs]
    prep = statistics.median(x for r in real for x in r["prepare_s"])
    runp = statistics.median(x for r in real for x in r["run_prepared_s"])
    rep = statistics.median(x for r in real for x in r["report_s"])
    ours = statistics.median(x for r in real for x in r["ours_s"])
    lines += [
        "",
        f"BPS's own cost, excluded above: the real path through ctrl_bps with the real no-op WMS on "
        f"{real[0]['groups']} groups of {GROUP_SIZE * 9} quanta per run (median per group): `bps.prepare` "
        f"(`pipetask qgraph` subprocess, clustering, generic workflow, NoopService.prepare) **{prep:.2f} s**, "
        f"`bps.run_prepared` (NoopService.submit, get_status) {1000 * runp:.1f} ms, `bps.report` "
        f"(NoopService.report) {1000 * rep:.1f} ms; our code around them in the same `run_group` calls "
        f"{1000 * ours:.0f} ms.",
    ]
    return "\n".join(lines)


def verdict(runs: list[dict[str, Any]]) -> tuple[str, bool, str]:
    per = statistics.median(r["total"]["ms_per_group"] for r in runs)
    parts = ", ".join(
        f"{k} {statistics.median(r[k]['ms_per_group'] for r in runs):.1f}"
        for k in ("planning", "submission", "poll_finished")
    )
    return (
        f"Orchestration overhead of a 1,000-group campaign under {GOAL_MS_PER_GROUP:.0f} ms per group "
        "(no-op WMS, BPS excluded)",
        per < GOAL_MS_PER_GROUP,
        f"{per:.1f} ms/group ({parts})",
    )
