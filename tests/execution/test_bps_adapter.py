"""The BPS adapter (``lsst_adapter.bps``): rendering submit files and running real BPS workflows.

Fast tests render submit files and map WMS reports. The ``slow`` ones build a small demo repo
(one night, 2 science exposures ``…150``/``…151`` × 2 detectors = 4 step1 quanta) and run
``pipelines/drp.yaml#step1`` through BPS + Parsl for real. To keep them cheap they use the
``local_threads`` Parsl site (no interchange/worker-pool processes) and cluster the quanta of
an exposure into one job, so a run costs about three pipetask process starts in a row
(init job, the jobs in parallel, final job) plus ``pipetask qgraph`` for prepare. The rescue
run uses Parsl's standard ``sites.Local`` (HighThroughputExecutor), ~8 s more, to prove it works.
None of these tests touch the Django database.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from lsst_adapter import bps

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PIPELINE = str(PROJECT_ROOT / "pipelines" / "drp.yaml")
RAW = "DemoCam/raw/all"
NIGHT = 20251121
EXPOSURES = (NIGHT * 100_000 + 150, NIGHT * 100_000 + 151)
DETECTORS = (0, 1)
SCIENCE = "instrument='DemoCam' AND exposure.observation_type='science'"
FAIL = (EXPOSURES[1], 1)
# One job per exposure instead of one per quantum: half the pipetask process starts.
CLUSTER_BY_EXPOSURE = {
    "clusterAlgorithm": "lsst.ctrl.bps.quantum_clustering_funcs.dimension_clustering",
    "cluster": {"step1": {"pipetasks": "step1", "dimensions": "exposure"}},
}
TIMINGS: dict[str, float] = {}


def make_spec(tmp: Path, name: str, **overrides: Any) -> bps.GroupSubmitSpec:
    values: dict[str, Any] = {
        "pipeline_yaml": f"{PIPELINE}#step1",
        "butler_config": str(tmp / "repo"),
        "input_collections": [RAW],
        "data_query": SCIENCE,
        "output": f"u/cm/{name}",
        "output_run": f"u/cm/{name}/run1",
        "submit_dir": str(tmp / "submit" / f"{name}-run1"),
        "payload_name": name,
        "compute_site": "local_threads",
        "wms": "parsl",
        "request_memory": 1024,
        "extra": dict(CLUSTER_BY_EXPOSURE),
    }
    values.update(overrides)
    return bps.GroupSubmitSpec(**values)


def write_submit_file(spec: bps.GroupSubmitSpec) -> Path:
    # Not inside submit_dir: BPS creates that directory and refuses an existing one.
    path = Path(spec.submit_dir).parent / f"{Path(spec.submit_dir).name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(bps.render_submit_yaml(spec))
    return path


def data_ids(butler: Any, dataset_type: str, collection: str) -> set[tuple[int, int]]:
    refs = butler.query_datasets(dataset_type, collections=collection, explain=False, limit=None)
    return {(ref.dataId["exposure"], ref.dataId["detector"]) for ref in refs}


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    from lsst_adapter.demo import build_demo_repo

    root = tmp_path_factory.mktemp("bps_adapter")
    build_demo_repo(root / "repo", nights=(NIGHT,), science_per_night=2, detectors=len(DETECTORS))
    return root


@pytest.fixture(scope="module")
def butler(tmp):
    from lsst.daf.butler import Butler

    return Butler.from_config(str(tmp / "repo"))


@pytest.fixture(scope="module", autouse=True)
def report_timings():
    yield
    if TIMINGS:
        print("\nBPS adapter timings (s): " + ", ".join(f"{k}={v:.1f}" for k, v in TIMINGS.items()))


# --------------------------------------------------------------------------------------
# Rendering (fast)
# --------------------------------------------------------------------------------------


def test_render_is_valid_yaml_with_the_expected_keys(tmp_path):
    spec = make_spec(
        tmp_path,
        "g1",
        data_id_tables=[str(tmp_path / "ids one.ecsv"), "/data/ids2.ecsv"],
        skip_existing_in=["u/cm/g1/run1"],
        config_overrides={"step1": {"failDataIds": ["exposure:2025112100151,detector:1"], "failProbability": 0.25}},
        config_files={"step2": ["/cfg/step2.py"]},
        extra={
            **CLUSTER_BY_EXPOSURE,
            "numberOfRetries": 2,
            "site.local_threads.cores": 4,
            "project": "w48",
            "finalJob": {"requestCpus": 2},
        },
    )
    text = bps.render_submit_yaml(spec)
    assert text == bps.render_submit_yaml(spec), "rendering is deterministic"
    config = yaml.safe_load(text)
    assert config["pipelineYaml"] == f"{PIPELINE}#step1"
    assert config["payload"] == {
        "payloadName": "g1",
        "butlerConfig": str(tmp_path / "repo"),
        "inCollection": RAW,
        "dataQuery": SCIENCE,
        "output": "u/cm/g1",
        "outputRun": "u/cm/g1/run1",
    }
    assert config["submitPath"] == spec.submit_dir
    assert config["computeSite"] == "local_threads"
    assert config["wmsServiceClass"] == "lsst.ctrl.bps.parsl.ParslService"
    assert config["requestMemory"] == 1024 and config["requestCpus"] == 1
    assert config["site"]["local"]["class"] == "lsst.ctrl.bps.parsl.sites.Local"
    assert config["site"]["local_threads"] == {
        "class": "lsst_adapter.bps.LocalThreads",
        "cores": 4,  # "a.b.c" keys of extra address nested keys
        "retries": 2,  # numberOfRetries means Parsl retries too
        "run_dir": f"{spec.submit_dir}/parsl_runinfo",
    }
    assert config["numberOfRetries"] == 2 and config["project"] == "w48"
    assert config["finalJob"] == {"requestCpus": 2, "requestMemory": 2048}  # merged, not replaced
    assert config["clusterAlgorithm"].endswith("dimension_clustering")
    env = config["environment"]
    assert Path(env["CTRL_MPEXEC_DIR"], "bin", "pipetask").exists()
    assert Path(env["DAF_BUTLER_DIR"], "bin", "butler").exists()
    assert str(PROJECT_ROOT) in env["PYTHONPATH"].split(":")
    assert config["extraQgraphOptions"] == (
        f'--data-id-table "{tmp_path}/ids one.ecsv" --data-id-table /data/ids2.ecsv '
        "--skip-existing-in u/cm/g1/run1 -C step2:/cfg/step2.py "
        "-c \"step1:failDataIds=['exposure:2025112100151,detector:1']\" -c step1:failProbability=0.25"
    )
    assert "<spec:" not in text


def test_render_maps_wms_and_refuses_what_bps_would_mangle(tmp_path):
    for wms, cls in (
        ("htcondor", "lsst.ctrl.bps.htcondor.HTCondorService"),
        ("panda", "lsst.ctrl.bps.panda.PanDAService"),
        ("noop", "lsst_adapter.bps_noop.NoopService"),
    ):
        config = yaml.safe_load(bps.render_submit_yaml(make_spec(tmp_path, "g", wms=wms, extra={})))
        assert config["wmsServiceClass"] == cls
        assert config["extraQgraphOptions"] == ""
    with pytest.raises(ValueError, match="Unknown wms"):
        bps.render_submit_yaml(make_spec(tmp_path, "g", wms="slurm"))
    with pytest.raises(ValueError, match="cannot carry"):
        bps.render_submit_yaml(make_spec(tmp_path, "g", config_overrides={"step1": {"failDataIds": ["exposure=1"]}}))
    with pytest.raises(ValueError, match="double quotes"):
        bps.render_submit_yaml(make_spec(tmp_path, "g", data_query='exposure.observation_type="science"'))
    with pytest.raises(ValueError, match="expand"):
        bps.render_submit_yaml(make_spec(tmp_path, "g", output="u/{operator}/x"))


def test_config_override_file_carries_equals_signs(tmp_path):
    path = bps.write_config_override_file(
        tmp_path / "step1.py", {"failDataIds": ["exposure=2025112100151,detector=1"], "failProbability": 0.5}
    )
    namespace: dict[str, Any] = {"config": type("C", (), {})()}
    exec(path.read_text(), namespace)
    assert namespace["config"].failDataIds == ["exposure=2025112100151,detector=1"]
    assert namespace["config"].failProbability == 0.5


def test_report_maps_a_remote_wms_run(monkeypatch):
    """report() with the remote service class replaced by a fake (nothing else is faked)."""
    from lsst.ctrl.bps import BaseWmsService, WmsJobReport, WmsRunReport, WmsStates

    class FakeHTCondor(BaseWmsService):
        asked: list[Any] = []

        def report(self, wms_workflow_id=None, user=None, hist=0, pass_thru=None, is_global=False,
                   return_exit_codes=False):  # fmt: skip
            self.asked.append((wms_workflow_id, return_exit_codes))
            states = [WmsStates.SUCCEEDED, WmsStates.SUCCEEDED, WmsStates.FAILED, WmsStates.RUNNING,
                      WmsStates.READY, WmsStates.PRUNED]  # fmt: skip
            jobs = [WmsJobReport(f"1.{i}", f"q{i}", "step1" if i < 4 else "step2", s) for i, s in enumerate(states)]
            jobs.append(WmsJobReport("1.9", "pipetaskInit", "pipetaskInit", WmsStates.SUCCEEDED))
            return [WmsRunReport(wms_id="1", state=WmsStates.RUNNING, jobs=jobs, exit_code_summary={"step1": [1]})], ""

    progress = bps.report("htcondor", "1", service_class=FakeHTCondor)
    assert FakeHTCondor.asked == [("1", True)]
    assert (progress.total, progress.succeeded, progress.failed, progress.running) == (6, 2, 1, 1)
    assert (progress.pending, progress.blocked, progress.unit, progress.state) == (1, 1, "jobs", "RUNNING")
    assert progress.by_task["step2"] == {"total": 2, "succeeded": 0, "failed": 0, "running": 0, "pending": 1,
                                         "blocked": 1}  # fmt: skip
    (failure,) = progress.failures
    assert failure.task_label == "step1" and "exit codes of step1 jobs: [1]" in failure.message


# --------------------------------------------------------------------------------------
# Real BPS runs (slow)
# --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_empty_graph_is_refused_by_prepare(tmp):
    spec = make_spec(tmp, "empty", data_query=f"{SCIENCE} AND exposure = 1")
    started = time.monotonic()
    with pytest.raises(bps.EmptyGraphError, match="empty"):
        bps.prepare(write_submit_file(spec))
    TIMINGS["empty_preflight"] = time.monotonic() - started


@pytest.mark.slow
def test_run_step1_through_bps_and_parsl(tmp, butler):
    spec = make_spec(tmp, "ok")
    started = time.monotonic()
    prepared = bps.prepare(write_submit_file(spec))
    TIMINGS["ok_prepare"] = time.monotonic() - started
    assert prepared.quanta == 4 and prepared.quanta_by_task == {"step1": 4}
    assert prepared.run_name == "u_cm_ok_run1" and prepared.submit_dir == spec.submit_dir
    assert Path(prepared.qgraph_file).is_file() and prepared.output_run == spec.output_run
    assert prepared.jobs == 4  # pipetaskInit, one job per exposure, finalJob

    before = bps.progress(prepared.submit_dir)
    assert (before.total, before.pending, before.state, before.finished) == (4, 4, "PENDING", False)

    started = time.monotonic()
    result = bps.run_prepared(prepared)
    TIMINGS["ok_run"] = time.monotonic() - started
    assert result.run_id is None and result.finished and result.state == "SUCCEEDED"
    assert result.run_name == prepared.run_name and result.quanta == 4
    expected = {(e, d) for e in EXPOSURES for d in DETECTORS}
    assert data_ids(butler, "calexpSummary", spec.output) == expected
    assert data_ids(butler, "step1_metrics", spec.output) == expected
    for p in (result.progress, bps.progress(spec.submit_dir)):
        assert p is not None
        assert (p.total, p.succeeded, p.failed, p.pending, p.running, p.blocked) == (4, 4, 0, 0, 0, 0)
        assert p.state == "SUCCEEDED" and p.failures == []


@pytest.fixture(scope="module")
def failed_run(tmp) -> tuple[bps.GroupSubmitSpec, bps.SubmitResult]:
    spec = make_spec(
        tmp, "fail", config_overrides={"step1": {"failDataIds": [f"exposure:{FAIL[0]},detector:{FAIL[1]}"]}}
    )
    started = time.monotonic()
    result = bps.submit(write_submit_file(spec))
    TIMINGS["fail_submit"] = time.monotonic() - started
    return spec, result


@pytest.mark.slow
def test_injected_failure_is_reported_with_data_id_and_message(failed_run, butler):
    spec, result = failed_run
    assert result.state == "FAILED" and result.quanta == 4
    progress = bps.progress(spec.submit_dir)
    assert progress == result.progress
    assert (progress.total, progress.succeeded, progress.failed, progress.blocked) == (4, 3, 1, 0)
    (failure,) = progress.failures
    assert failure.task_label == "step1"
    assert failure.data_id == {"instrument": "DemoCam", "exposure": FAIL[0], "detector": FAIL[1]}
    assert failure.exception_type == "demo_pipeline.tasks.InjectedFailure"
    assert f"matches failDataIds entry 'exposure:{FAIL[0]},detector:{FAIL[1]}'" in failure.message
    assert failure.log and "InjectedFailure" in Path(failure.log).read_text()
    assert failure.log_dataset and failure.log_dataset.startswith("file://")
    expected = {(e, d) for e in EXPOSURES for d in DETECTORS} - {FAIL}
    assert data_ids(butler, "calexpSummary", spec.output) == expected


@pytest.mark.slow
def test_rescue_reruns_only_the_failed_quantum(failed_run, tmp, butler):
    """A rescue: new RUN in the same chain, skipping what the failed run produced, fault removed.

    Runs on Parsl's standard ``sites.Local``, prepared here and run from the submit directory
    (as a second process of the executor would).
    """
    failed_spec, _ = failed_run
    spec = make_spec(
        tmp,
        "fail",
        output_run="u/cm/fail/run2",
        submit_dir=str(tmp / "submit" / "fail-run2"),
        skip_existing_in=[failed_spec.output_run],
        compute_site="local",
        extra={},
    )
    started = time.monotonic()
    prepared = bps.prepare(write_submit_file(spec))
    assert prepared.quanta == 1
    result = bps.run_prepared(bps.load_prepared(prepared.submit_dir))
    TIMINGS["rescue_submit_htex"] = time.monotonic() - started
    assert result.state == "SUCCEEDED"
    assert result.progress is not None and (result.progress.total, result.progress.succeeded) == (1, 1)
    assert data_ids(butler, "calexpSummary", spec.output_run) == {FAIL}
    everything = {(e, d) for e in EXPOSURES for d in DETECTORS}
    assert data_ids(butler, "calexpSummary", spec.output) == everything
    assert list(butler.collections.get_info(spec.output).children[:2]) == [spec.output_run, failed_spec.output_run]


@pytest.mark.slow
def test_noop_service_submits_instantly(tmp):
    from astropy.table import Table

    table = tmp / "noop_ids.ecsv"
    Table({"instrument": ["DemoCam"] * 2, "exposure": list(EXPOSURES), "detector": [0, 0]}).write(
        table, format="ascii.ecsv"
    )
    spec = make_spec(tmp, "noop", wms="noop", data_id_tables=[str(table)], extra={})
    started = time.monotonic()
    prepared = bps.prepare(write_submit_file(spec))
    TIMINGS["noop_prepare"] = time.monotonic() - started
    assert prepared.quanta == 2  # the data-ID table went through extraQgraphOptions
    started = time.monotonic()
    result = bps.run_prepared(prepared)
    TIMINGS["noop_run"] = time.monotonic() - started
    assert TIMINGS["noop_run"] < 1.0
    assert result.state == "SUCCEEDED" and result.run_id == prepared.submit_dir and not result.finished
    progress = bps.report("noop", result.run_id)
    assert (progress.total, progress.succeeded, progress.state, progress.unit) == (2, 2, "SUCCEEDED", "jobs")
    assert set(progress.by_task) == {"pipetaskInit", "step1", "finalJob"}
