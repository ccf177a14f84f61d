"""A BPS WMS plugin that runs nothing: for measuring the campaign manager's own overhead.

``wmsServiceClass: lsst_adapter.bps_noop.NoopService`` (``GroupSubmitSpec(wms="noop")``).
``submit`` returns at once with a run id (the submit directory), ``report``/``get_status``
say every job succeeded. No pipetask job runs and nothing is written to the repository.

What it does NOT skip: everything BPS does before the WMS is called. ``prepare`` still
runs ``pipetask qgraph`` in a subprocess (about 2 s for a small graph, the graph builder's
own cost for a big one), clusters the quanta and builds the generic workflow (milliseconds
for a few hundred quanta). Giving BPS an existing ``qgraphFile`` does not avoid a
subprocess either: with a final job BPS then runs ``pipetask update-graph-run``.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from lsst.ctrl.bps import BaseWmsService, BaseWmsWorkflow, WmsJobReport, WmsRunReport, WmsStates

__all__ = ["STATE_FILE", "NoopService", "NoopWorkflow"]

STATE_FILE = "noop_workflow.json"


class NoopWorkflow(BaseWmsWorkflow):
    """The jobs of a generic workflow, remembered by name and label only."""

    def __init__(self, name: str, config: Any, path: str, jobs: dict[str, str]):
        super().__init__(name, config)
        self.submit_path = path
        self.jobs = jobs  # job name -> label

    @classmethod
    def from_generic_workflow(
        cls, config: Any, generic_workflow: Any, out_prefix: str, service_class: str
    ) -> NoopWorkflow:
        jobs = {name: generic_workflow.get_job(name).label for name in generic_workflow}
        final = generic_workflow.get_final()
        if final is not None and hasattr(final, "label"):
            jobs[final.name] = final.label
        workflow = cls(generic_workflow.name, config, out_prefix, jobs)
        workflow.service_class = service_class
        return workflow

    def write(self, out_prefix: str) -> None:
        state = {"name": self.name, "run_id": self.run_id, "jobs": self.jobs, "submitted": None}
        (Path(out_prefix) / STATE_FILE).write_text(json.dumps(state, indent=1, sort_keys=True))


def _read_state(run_id: str) -> dict[str, Any] | None:
    path = Path(run_id) / STATE_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text())


class NoopService(BaseWmsService):
    """WMS service whose runs succeed instantly. The run id is the submit directory."""

    def prepare(self, config: Any, generic_workflow: Any, out_prefix: str | None = None) -> NoopWorkflow:
        if out_prefix is None:
            out_prefix = config["submitPath"]
        service_class = f"{type(self).__module__}.{type(self).__name__}"
        workflow = NoopWorkflow.from_generic_workflow(config, generic_workflow, out_prefix, service_class)
        workflow.write(out_prefix)
        return workflow

    def submit(self, workflow: BaseWmsWorkflow, **kwargs: Any) -> BaseWmsWorkflow:
        assert isinstance(workflow, NoopWorkflow)
        workflow.run_id = workflow.submit_path
        workflow.write(workflow.submit_path)
        state = _read_state(workflow.submit_path) or {}
        state["submitted"] = time.time()
        (Path(workflow.submit_path) / STATE_FILE).write_text(json.dumps(state, indent=1, sort_keys=True))
        return workflow

    def run_submission_checks(self) -> None:
        return None

    def get_status(self, wms_workflow_id: str, hist: float = 1, is_global: bool = False) -> tuple[WmsStates, str]:
        state = _read_state(wms_workflow_id)
        if state is None:
            return WmsStates.UNKNOWN, f"No no-op run at {wms_workflow_id}."
        return (WmsStates.SUCCEEDED if state.get("submitted") else WmsStates.UNREADY), ""

    def report(
        self,
        wms_workflow_id: str | None = None,
        user: str | None = None,
        hist: float = 0,
        pass_thru: str | None = None,
        is_global: bool = False,
        return_exit_codes: bool = False,
    ) -> tuple[list[WmsRunReport], str]:
        if wms_workflow_id is None:
            return [], "The no-op service only reports on one run (its submit directory)."
        state = _read_state(wms_workflow_id)
        if state is None:
            return [], f"No no-op run at {wms_workflow_id}."
        run_state, _ = self.get_status(wms_workflow_id)
        jobs = [
            WmsJobReport(wms_id=f"{i}", name=name, label=label, state=run_state)
            for i, (name, label) in enumerate(sorted(state["jobs"].items()))
        ]
        by_label = Counter(job.label for job in jobs)
        run = WmsRunReport(
            wms_id=wms_workflow_id,
            path=wms_workflow_id,
            label=state["name"],
            run=state["name"],
            state=run_state,
            jobs=jobs,
            total_number_jobs=len(jobs),
            job_state_counts={run_state: len(jobs)},
            job_summary={label: {run_state: count} for label, count in by_label.items()},
            exit_code_summary={},
            run_summary=";".join(f"{label}:{count}" for label, count in sorted(by_label.items())),
        )
        return [run], ""
