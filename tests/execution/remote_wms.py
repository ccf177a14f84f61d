"""Stand-ins for the REMOTE ends of the production WMS plugins, and nothing else.

The real ``lsst-ctrl-bps-htcondor`` and ``lsst-ctrl-bps-panda`` code runs in the tests:
BPS prepares the workflow (HTCondor DAG files, PanDA/iDDS workflow), the plugin submits it,
reports on it (turning what the WMS answers into a ``WmsRunReport``) and cancels it. Only the
calls that would leave this machine are answered here:

- HTCondor: ``htcondor.Collector`` and ``htcondor.Schedd`` (locate, submit, query, history,
  act) in the plugin's modules. The fake pool also plays DAGMan: on submit it writes the
  DAGMan log of the submit directory, and ``finish()`` writes the node-status file that the
  real DAGMan would write there (the plugin reads both).
- PanDA: ``pandaclient.idds_api.get_api`` (the PanDA relay/iDDS HTTP client) answering
  ping, submit, get_requests, get_contents_output_ext and abort like the service does.
"""

from __future__ import annotations

import itertools
import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# --------------------------------------------------------------------------------------
# HTCondor
# --------------------------------------------------------------------------------------

SCHEDD_NAME = "schedd.fake.example.org"
_DAG_CMD = "/usr/bin/condor_dagman"


def _user_log_event(code: int, cluster: int, text: str, extra: str = "") -> str:
    """One event of an HTCondor user log, as the schedd/DAGMan write them."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    lines = [f"{code:03d} ({cluster:03d}.000.000) {stamp} {text}"]
    if extra:
        lines.append(extra)
    lines.append("...")
    return "\n".join(lines) + "\n"


def _terminated(code: int) -> str:
    usage = "\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  "
    lines = [f"\t(1) Normal termination (return value {code})"]
    lines += [
        usage + what for what in ("Run Remote Usage", "Run Local Usage", "Total Remote Usage", "Total Local Usage")
    ]
    lines += [f"\t0  -  {what}" for what in ("Run Bytes Sent By Job", "Run Bytes Received By Job",
                                              "Total Bytes Sent By Job", "Total Bytes Received By Job")]  # fmt: skip
    return "\n".join(lines)


@dataclass
class _DagRun:
    cluster: int
    submit_dir: Path
    dag_file: Path
    ad: dict[str, Any]
    nodes: list[str] = field(default_factory=list)


class FakeCondorPool:
    """A schedd and its DAGMan, in memory. ``install(monkeypatch)`` plugs it into the plugin."""

    def __init__(self) -> None:
        self.runs: dict[int, _DagRun] = {}
        self.submitted: list[int] = []
        self.removed: list[str] = []
        self._ids = itertools.count(9001)

    # -- plugging in --------------------------------------------------------------------
    def install(self, monkeypatch: Any) -> FakeCondorPool:
        import htcondor
        from lsst.ctrl.bps.htcondor import common_utils, htcondor_service, lssthtc

        pool = self

        class Collector:
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                pass

            def locate(self, daemon_type: Any, name: str | None = None) -> dict[str, str]:
                return {"Name": SCHEDD_NAME, "MyAddress": "<127.0.0.1:9618>"}

            def locateAll(self, daemon_type: Any) -> list[dict[str, str]]:
                return [self.locate(daemon_type)]

            def query(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
                return []

        class Schedd:
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                pass

            def submit(self, description: Any, *args: Any, **kwargs: Any) -> Any:
                return pool._submit(description)

            def query(self, constraint: Any = None, projection: Any = None, **kwargs: Any) -> list[Any]:
                return pool._select(constraint or kwargs.get("requirements"), finished=False)

            def xquery(self, constraint: Any = None, projection: Any = None, **kwargs: Any) -> list[Any]:
                return pool._select(constraint or kwargs.get("requirements"), finished=False)

            def history(self, constraint: Any = None, projection: Any = None, **kwargs: Any) -> list[Any]:
                return pool._select(constraint or kwargs.get("requirements"), finished=True)

            def act(self, action: Any, constraint: Any, *args: Any, **kwargs: Any) -> dict[str, int]:
                return pool._remove(str(constraint))

        for module in (htcondor_service, lssthtc, common_utils):
            monkeypatch.setattr(module.htcondor, "Collector", Collector, raising=True)
            monkeypatch.setattr(module.htcondor, "Schedd", Schedd, raising=True)
        assert htcondor.Schedd is Schedd
        return self

    # -- the schedd ---------------------------------------------------------------------
    def _submit(self, description: Any) -> Any:
        cluster = next(self._ids)
        iwd = Path.cwd()  # the plugin submits from inside the submit directory
        dag_files = sorted(iwd.glob("*.dag"))
        assert dag_files, f"no DAG file in {iwd}"
        dag_file = dag_files[0]
        ad: dict[str, Any] = {
            "ClusterId": cluster,
            "ProcId": 0,
            "Cmd": _DAG_CMD,
            "Iwd": str(iwd),
            "JobStatus": 1,  # idle
            "Owner": "cm",
            "GlobalJobId": f"{SCHEDD_NAME}#{cluster}.0#{int(time.time())}",
            "QDate": int(time.time()),
        }
        for key, value in dict(description).items():
            if "bps_" in key:  # +bps_run, My.bps_payload, ...: the DAGMan job's ad carries them
                ad["bps_" + key.split("bps_", 1)[1]] = str(value).strip('"')
        nodes = [line.split()[1] for line in dag_file.read_text().splitlines() if line.startswith(("JOB ", "FINAL "))]
        self.runs[cluster] = _DagRun(cluster=cluster, submit_dir=iwd, dag_file=dag_file, ad=ad, nodes=nodes)
        self.submitted.append(cluster)
        # DAGMan starts and writes its log (the plugin reads the run id from it).
        log = dag_file.with_suffix(".dag.dagman.log")
        host = f"<127.0.0.1:9618?addrs=127.0.0.1-9618&alias={socket.gethostname()}>"
        log.write_text(
            _user_log_event(0, cluster, f"Job submitted from host: {host}")
            + _user_log_event(1, cluster, f"Job executing on host: {host}")
        )
        stamp = time.strftime("%m/%d/%y %H:%M:%S")
        dag_file.with_suffix(".dag.dagman.out").write_text(
            f"{stamp} ** condor_scheduniv_exec.{cluster}.0 (CONDOR_DAGMAN) STARTING UP\n"
        )
        ad["JobStatus"] = 2  # running
        self._write_node_status(self.runs[cluster], {})

        class Result:
            def cluster(self) -> int:
                return cluster

        return Result()

    def _select(self, constraint: Any, *, finished: bool) -> list[Any]:
        import classad

        expr = classad.ExprTree(str(constraint)) if constraint else None
        selected = []
        for run in self.runs.values():
            done = run.ad["JobStatus"] in (3, 4)
            if done != finished:
                continue
            ad = classad.ClassAd(run.ad)
            if expr is None or expr.eval(ad) is True:
                selected.append(ad)
        return selected

    def _remove(self, constraint: str) -> dict[str, int]:
        import classad

        expr = classad.ExprTree(constraint)
        hits = 0
        for run in self.runs.values():
            if run.ad["JobStatus"] in (1, 2) and expr.eval(classad.ClassAd(run.ad)) is True:
                run.ad.update(JobStatus=3, CompletionDate=int(time.time()))  # removed
                with run.dag_file.with_suffix(".dag.dagman.log").open("a") as log:
                    log.write(_user_log_event(9, run.cluster, "Job was aborted.", "\tvia condor_rm (by user cm)"))
                hits += 1
                self.removed.append(f"{run.cluster}.0")
        return {"TotalSuccess": hits, "TotalError": 0}

    # -- DAGMan ---------------------------------------------------------------------------
    def run_of(self, run_id: str) -> _DagRun:
        return self.runs[int(float(run_id))]

    def progress(self, run_id: str, *, done: int) -> None:
        """The first ``done`` nodes succeeded, the rest are queued/running."""
        run = self.run_of(run_id)
        self._write_node_status(run, {name: 5 for name in run.nodes[:done]} | {n: 3 for n in run.nodes[done:]})

    def finish(self, run_id: str, *, failed_nodes: tuple[str, ...] = ()) -> None:
        """DAGMan ends: every node done, except ``failed_nodes`` (names containing one of them) in error."""
        run = self.run_of(run_id)
        status = {}
        for name in run.nodes:
            status[name] = 6 if any(part in name for part in failed_nodes) else 5
        self._write_node_status(run, status, finished=True)
        failed = any(value == 6 for value in status.values())
        with run.dag_file.with_suffix(".dag.dagman.log").open("a") as log:
            log.write(_user_log_event(5, run.cluster, "Job terminated.", _terminated(1 if failed else 0)))
        run.ad.update(
            JobStatus=4,
            CompletionDate=int(time.time()),
            ExitCode=1 if failed else 0,
            DAG_Status=1 if failed else 0,
            ExitBySignal=False,
        )

    def _write_node_status(self, run: _DagRun, status: dict[str, int], *, finished: bool = False) -> None:
        counts = {"done": 0, "failed": 0, "queued": 0, "unready": 0}
        blocks = []
        for name in run.nodes:
            value = status.get(name, 0)
            counts["done" if value == 5 else "failed" if value == 6 else "queued" if value == 3 else "unready"] += 1
            blocks.append(
                "[\n"
                '  Type = "NodeStatus";\n'
                f'  Node = "{name}";\n'
                f"  NodeStatus = {value};\n"
                f'  StatusDetails = "{"Job failed" if value == 6 else ""}";\n'
                "  RetryCount = 0;\n"
                f"  JobProcsQueued = {1 if value == 3 else 0};\n"
                "  JobProcsHeld = 0;\n"
                "]\n"
            )
        dag_status = (6 if counts["failed"] else 5) if finished else 3
        head = (
            "[\n"
            '  Type = "DagStatus";\n'
            f'  DagFiles = {{ "{run.dag_file.name}" }};\n'
            f"  Timestamp = {int(time.time())};\n"
            f"  DagStatus = {dag_status};\n"
            f"  NodesTotal = {len(run.nodes)};\n"
            f"  NodesDone = {counts['done']};\n"
            "  NodesPre = 0;\n"
            f"  NodesQueued = {counts['queued']};\n"
            "  NodesPost = 0;\n"
            "  NodesReady = 0;\n"
            f"  NodesUnready = {counts['unready']};\n"
            "  NodesFutile = 0;\n"
            f"  NodesFailed = {counts['failed']};\n"
            "  JobProcsHeld = 0;\n"
            f"  JobProcsIdle = {counts['queued']};\n"
            "]\n"
        )
        tail = f'[\n  Type = "StatusEnd";\n  EndTime = {int(time.time())};\n  NextUpdate = 0;\n]\n'
        run.dag_file.with_suffix(".node_status").write_text(head + "".join(blocks) + tail)


# --------------------------------------------------------------------------------------
# PanDA / iDDS
# --------------------------------------------------------------------------------------


@dataclass
class _Request:
    request_id: int
    name: str
    tasks: list[str]  # iDDS task (transform) names, in submission order
    status: str = "Transforming"
    task_status: dict[str, str] = field(default_factory=dict)
    jobs: dict[str, int] = field(default_factory=dict)  # task -> number of jobs
    done: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)


class FakeIdds:
    """The PanDA relay + iDDS service: what ``pandaclient.idds_api.get_api()`` talks to."""

    def __init__(self) -> None:
        self.requests: dict[int, _Request] = {}
        self.aborted: list[int] = []
        self.submitted: list[int] = []
        self._ids = itertools.count(501)

    def install(self, monkeypatch: Any) -> FakeIdds:
        # pandaclient resolves its cache server's host name when imported, unless told not to.
        monkeypatch.setenv("PANDA_BEHIND_REAL_LB", "1")
        import pandaclient.idds_api

        fake = self

        class Api:
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                self.kwargs = kwargs

            def ping(self) -> Any:
                return 0, (True, {"Status": "OK"})

            def submit(self, workflow: Any, username: Any = None, use_dataset_name: bool = False) -> Any:
                return 0, (True, fake._submit(workflow))

            def get_requests(self, request_id: Any = None, with_detail: bool = False, **kwargs: Any) -> Any:
                return 0, (True, fake._requests(int(request_id), with_detail))

            def get_contents_output_ext(self, request_id: Any = None, workload_id: Any = None, **kwargs: Any) -> Any:
                return 0, (True, fake._contents(int(request_id), workload_id))

            def abort(self, request_id: Any = None, **kwargs: Any) -> Any:
                return 0, (True, fake._abort(int(request_id)))

        monkeypatch.setattr(pandaclient.idds_api, "get_api", lambda *args, **kwargs: Api(*args, **kwargs))
        monkeypatch.setenv("PANDA_URL", "https://panda.fake.example.org:25443/server/panda")
        monkeypatch.setenv("PANDA_URL_SSL", "https://panda.fake.example.org:25443/server/panda")
        return self

    def _submit(self, workflow: Any) -> int:
        request_id = next(self._ids)
        works = getattr(getattr(workflow, "template", workflow), "works", None) or {}  # iDDS: template.works
        works = list(works.values()) if isinstance(works, dict) else list(works)
        names = [getattr(work, "task_name", None) or work.get_work_name() for work in works]
        jobs = {}
        for work, name in zip(works, names, strict=True):
            maps = getattr(work, "dependency_map", None) or []
            jobs[name] = max(len(maps), 1)
        self.requests[request_id] = _Request(
            request_id=request_id, name=str(getattr(workflow, "name", "")), tasks=names, jobs=jobs
        )
        self.submitted.append(request_id)
        return request_id

    def _requests(self, request_id: int, with_detail: bool) -> list[dict[str, Any]]:
        request = self.requests.get(request_id)
        if request is None:
            return []
        base = {
            "request_id": request.request_id,
            "username": "cm",
            "name": request.name,
            "status": {"attributes": {"_name_": request.status}},
        }
        if not with_detail:
            return [base]
        rows = []
        for number, task in enumerate(request.tasks, start=1):
            total = request.jobs[task]
            done, failed = request.done.get(task, 0), request.failed.get(task, 0)
            rows.append(
                base
                | {
                    "transform_id": number,
                    "transform_workload_id": 7000 + number,
                    "transform_name": task,
                    "transform_status": {"attributes": {"_name_": request.task_status.get(task, "Transforming")}},
                    "output_total_files": total,
                    "output_processed_files": done,
                    "output_failed_files": failed,
                    "output_processing_files": total - done - failed,
                    "output_missing_files": 0,
                    "input_new_files": 0,
                    "output_new_files": 0,
                }
            )
        return rows

    def _contents(self, request_id: int, workload_id: Any) -> dict[str, list[dict[str, Any]]]:
        request = self.requests[request_id]
        task = request.tasks[int(workload_id) - 7001]
        return {str(workload_id): [{"trans_exit_code": 1} for _ in range(request.failed.get(task, 0))]}

    def _abort(self, request_id: int) -> dict[str, Any]:
        self.aborted.append(request_id)
        self.requests[request_id].status = "Cancelled"
        return {"status": 0, "message": f"request {request_id} aborted"}

    # -- what the PanDA jobs do ---------------------------------------------------------
    def finish(self, request_id: int | str, *, failed_tasks: tuple[str, ...] = ()) -> None:
        """Every task ends; tasks whose label is in ``failed_tasks`` have one failed job."""
        request = self.requests[int(request_id)]
        any_failed = False
        for task in request.tasks:
            total = request.jobs[task]
            if any(re.search(rf"_\d+_{re.escape(label)}_\d+$", task) for label in failed_tasks):
                request.failed[task], request.done[task] = 1, total - 1
                request.task_status[task] = "SubFinished" if total > 1 else "Failed"
                any_failed = True
            else:
                request.done[task] = total
                request.task_status[task] = "Finished"
        request.status = "SubFinished" if any_failed else "Finished"
