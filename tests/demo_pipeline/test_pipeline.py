"""The demo pipeline (``demo_pipeline`` + ``pipelines/drp.yaml``) under the real ``pipetask``.

Fast tests call the task code in-process; the ``slow`` ones start ``.venv/bin/pipetask`` against a
small Butler repo built by :func:`lsst_adapter.demo.build_demo_repo`: one night, 5 science exposures
(``…150``–``…152`` good, ``…153`` poor seeing, ``…154`` dome light left on), 3 detectors. Each
pipetask process costs about 2-3 s. None of these tests touch the Django database.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PIPELINE = str(PROJECT_ROOT / "pipelines" / "drp.yaml")
PIPETASK = Path(sys.executable).parent / "pipetask"
RAW = "DemoCam/raw/all"
NIGHT = 20251121
GOOD, POOR_SEEING, DOME_LIGHT = (NIGHT * 100_000 + seq for seq in (152, 153, 154))
SCIENCE = "instrument='DemoCam' AND exposure.observation_type='science'"
QUERY = f"{SCIENCE} AND exposure IN ({GOOD}, {POOR_SEEING}, {DOME_LIGHT})"
DETECTORS = (0, 1, 2)


# --------------------------------------------------------------------------------------
# Helpers and fixtures
# --------------------------------------------------------------------------------------


def pipetask(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real pipetask executable with the project importable."""
    if not PIPETASK.exists():
        pytest.skip(f"{PIPETASK} is not installed")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
    result = subprocess.run(
        [str(PIPETASK), *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    if check and result.returncode != 0:
        pytest.fail(f"pipetask {' '.join(args)} exited {result.returncode}:\n{result.stderr[-4000:]}")
    return result


def by_data_id(butler: Any, dataset_type: str, collection: str) -> dict[tuple[int, ...], dict[str, Any]]:
    """Every dataset of a type in a collection, keyed by (exposure, detector) or (visit,)."""
    refs = butler.query_datasets(dataset_type, collections=collection, explain=False, limit=None)
    out = {}
    for ref in refs:
        key = (
            (ref.dataId["visit"],)
            if "visit" in ref.dataId.dimensions.names
            else (
                ref.dataId["exposure"],
                ref.dataId["detector"],
            )
        )
        out[key] = butler.get(ref)
    return out


def metric_value(bundle: dict[str, Any], name: str) -> float | None:
    for key, rows in bundle.items():
        if key.startswith("__"):
            continue
        for row in rows:
            if row["metric"] == f"demo_pipeline.{name}":
                return row["value"]
    raise KeyError(name)


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> str:
    from lsst_adapter.demo import build_demo_repo

    root = tmp_path_factory.mktemp("demo_pipeline") / "repo"
    build_demo_repo(root, nights=(NIGHT,), science_per_night=5, detectors=len(DETECTORS))
    return str(root)


@pytest.fixture(scope="module")
def butler(repo):
    from lsst.daf.butler import Butler

    return Butler.from_config(repo)


@pytest.fixture(scope="module")
def run1(repo) -> str:
    """Both steps on one good, one poor-seeing and one dome-light exposure (9 + 3 quanta)."""
    output = "u/test/run1"
    pipetask(
        "run", "-b", repo, "-i", RAW, "-o", output, "--register-dataset-types",
        "-p", PIPELINE, "-d", QUERY, "-j", "1",
    )  # fmt: skip
    return output


# --------------------------------------------------------------------------------------
# In-process tests of the task code (fast)
# --------------------------------------------------------------------------------------


def _raw(exposure: int, detector: int) -> dict[str, Any]:
    from lsst_adapter.demo import plan_exposures, raw_content

    spec = next(s for s in plan_exposures((NIGHT,), 5) if s.exposure_id == exposure)
    return raw_content(spec, detector)


def test_data_id_patterns():
    from demo_pipeline.tasks import matching_fail_pattern, parse_data_id_pattern

    assert parse_data_id_pattern("exposure=2025112100151,detector=4") == {"exposure": "2025112100151", "detector": "4"}
    assert parse_data_id_pattern(" exposure:2025112100151 , detector:4 ") == {
        "exposure": "2025112100151",
        "detector": "4",
    }
    for bad in ("", "exposure", "exposure=", "=4", ","):
        with pytest.raises(ValueError):
            parse_data_id_pattern(bad)
    data_id = {"instrument": "DemoCam", "exposure": 2025112100151, "detector": 4, "band": "g"}
    assert matching_fail_pattern(["exposure=2025112100151"], data_id) == "exposure=2025112100151"
    assert matching_fail_pattern(["exposure=2025112100151,detector=3"], data_id) is None
    assert matching_fail_pattern(["detector=3", "band:g"], data_id) == "band:g"
    assert matching_fail_pattern(["visit=2025112100151"], data_id) is None


def test_config_defaults_off_and_validation():
    from lsst.pex.config import FieldValidationError

    from demo_pipeline.tasks import Step1Config, Step2Config

    for config_class in (Step1Config, Step2Config):
        config = config_class()
        assert list(config.failDataIds) == [] and config.failProbability == 0.0
        config.validate()
    config = Step1Config()
    config.failDataIds = ["exposure=1,detector=2"]
    config.validate()
    # A bare string is split into characters by pex_config's ListField: validation catches it.
    config.failDataIds = "exposure=1"
    with pytest.raises(ValueError):
        config.validate()
    with pytest.raises(FieldValidationError):
        config.failProbability = 1.5


def test_fail_draw_is_deterministic_and_spread():
    from demo_pipeline.tasks import fail_draw

    ids = [{"instrument": "DemoCam", "detector": d, "exposure": e} for e in range(100) for d in range(9)]
    draws = [fail_draw("step1", 0, i) for i in ids]
    assert draws == [fail_draw("step1", 0, i) for i in ids]
    assert all(0.0 <= x < 1.0 for x in draws)
    assert 0.4 < sum(x < 0.5 for x in draws) / len(draws) < 0.6
    assert draws != [fail_draw("step1", 1, i) for i in ids]  # failSeed changes the choice


def test_step1_run_outputs_and_bundle_shape():
    from demo_pipeline.tasks import Step1Task

    task = Step1Task()
    data_id = {"instrument": "DemoCam", "detector": 1, "exposure": GOOD}
    result = task.run(_raw(GOOD, 1), data_id=data_id)
    summary, bundle = result.calexpSummary, result.step1_metrics
    for key in ("psf_fwhm", "sky_background", "source_count", "zero_point", "limiting_magnitude"):
        assert summary[key] is not None
    assert summary["band"] == "r" and summary["exposure"] == GOOD and summary["detector"] == 1
    assert bundle["__reference_package"] == "demo_pipeline"
    assert bundle["__timestamp_version"] == "run_timestamp"
    assert "__dataset_identifier" in bundle
    units = {}
    for action, rows in bundle.items():
        if action.startswith("__"):
            continue
        for row in rows:
            assert set(row) == {"metric", "value", "unit", "identifier", "blob_refs"}
            assert row["metric"].startswith("demo_pipeline.")
            assert row["value"] is None or isinstance(row["value"], float)
            assert row["unit"] in ("arcsec", "ct", "mag", "")
            int(row["identifier"], 16)
            assert row["blob_refs"] == []
            units[row["metric"]] = row["unit"]
    assert units["demo_pipeline.psf_fwhm"] == "arcsec"
    assert units["demo_pipeline.sky_background"] == "ct"
    assert units["demo_pipeline.zero_point"] == "mag"
    assert units["demo_pipeline.source_count"] == ""
    # Deterministic: the same raw gives the same bundle, identifiers included.
    assert task.run(_raw(GOOD, 1), data_id=data_id).step1_metrics == bundle
    other = task.run(_raw(GOOD, 2), data_id={**data_id, "detector": 2}).step1_metrics
    assert other["psfMetrics"][0]["identifier"] != bundle["psfMetrics"][0]["identifier"]


def test_step1_skips_non_science_raws():
    from lsst.pipe.base import NoWorkFound

    from demo_pipeline.tasks import Step1Config, Step1Task

    bias = NIGHT * 100_000 + 1
    with pytest.raises(NoWorkFound, match="bias"):
        Step1Task().run(_raw(bias, 0))
    config = Step1Config()
    config.scienceOnly = False
    assert Step1Task(config=config).run(_raw(bias, 0)).calexpSummary["observation_type"] == "bias"


def test_step2_run_aggregates_detectors():
    from demo_pipeline.tasks import Step1Task, Step2Task

    step1 = Step1Task()
    summaries = [step1.run(_raw(POOR_SEEING, d)).calexpSummary for d in (2, 0, 1)]
    result = Step2Task().run(summaries, data_id={"instrument": "DemoCam", "visit": POOR_SEEING})
    visit = result.visitSummary
    assert visit["visit"] == POOR_SEEING and visit["n_detectors"] == 3 and visit["detectors"] == [0, 1, 2]
    assert visit["total_source_count"] == sum(s["source_count"] for s in summaries)
    worst = max(summaries, key=lambda s: s["psf_fwhm"])
    assert visit["worst_detector"] == worst["detector"] and visit["max_psf_fwhm"] == worst["psf_fwhm"]
    assert metric_value(result.step2_metrics, "n_detectors") == 3.0
    assert metric_value(result.step2_metrics, "median_psf_fwhm") == visit["median_psf_fwhm"]


def test_step3_summarises_a_patch_as_a_coadd_of_its_visits_and_step4_a_tract():
    from demo_pipeline.tasks import Step1Task, Step2Task, Step3Task, Step4Task, coadd_depth

    step1, step2 = Step1Task(), Step2Task()
    visits = [
        step2.run(
            [step1.run(_raw(exposure, d)).calexpSummary for d in DETECTORS], data_id={"visit": exposure}
        ).visitSummary
        for exposure in (GOOD, POOR_SEEING)
    ]
    # (This night has one exposure per band: the task trusts its quantum's data ID for the band.)
    patch = {"skymap": "demo_sky_v1", "tract": 0, "patch": 1, "band": visits[0]["band"]}
    result = Step3Task().run(list(reversed(visits)), data_id=patch)
    coadd = result.coaddSummary
    assert coadd["visits"] == [GOOD, POOR_SEEING] and coadd["n_visits"] == 2
    depths = [v["median_limiting_magnitude"] for v in visits]
    # Two images: deeper than the deeper one; two equal images would gain 1.25 log10(2) = 0.38 mag.
    assert max(depths) < coadd["coadd_depth"] <= max(depths) + 0.38
    assert coadd_depth([24.0, 24.0]) == pytest.approx(24.0 + 1.25 * math.log10(2))
    assert coadd_depth([None]) is None
    assert metric_value(result.step3_metrics, "coadd_depth") == coadd["coadd_depth"]
    assert metric_value(result.step3_metrics, "n_visits") == 2.0

    other = Step3Task().run(visits[:1], data_id={**patch, "patch": 3}).coaddSummary
    tract = Step4Task().run([coadd, other], data_id={"skymap": "demo_sky_v1", "tract": 0})
    summary = tract.tractSummary
    assert (summary["n_patches"], summary["n_coadds"], summary["max_visits_per_patch"]) == (2, 2, 2)
    assert summary["shallowest_coadd_depth"] == min(coadd["coadd_depth"], other["coadd_depth"])
    assert metric_value(tract.step4_metrics, "tract_n_patches") == 2.0


# --------------------------------------------------------------------------------------
# The real pipetask (slow)
# --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_qgraph_with_data_id_table(repo, tmp_path):
    from astropy.table import Table
    from lsst.pipe.base.pipeline_graph import TaskImportMode
    from lsst.pipe.base.quantum_graph import PredictedQuantumGraph

    wanted = {(GOOD, 1), (DOME_LIGHT, 2)}
    table_path = tmp_path / "ids.ecsv"
    Table(
        {
            "instrument": ["DemoCam"] * len(wanted),
            "exposure": [e for e, _ in sorted(wanted)],
            "detector": [d for _, d in sorted(wanted)],
        }
    ).write(table_path, format="ascii.ecsv")
    graph_path = tmp_path / "step1.qg"
    # qgraph needs an output run (-o or --output-run) even though it writes nothing to the repo.
    pipetask(
        "qgraph", "-b", repo, "-i", RAW, "-o", "u/test/qgraph", "-p", f"{PIPELINE}#step1",
        "-d", SCIENCE, "--data-id-table", str(table_path), "--save-qgraph", str(graph_path),
    )  # fmt: skip
    with PredictedQuantumGraph.open(graph_path, import_mode=TaskImportMode.DO_NOT_IMPORT) as reader:
        reader.read_thin_graph()
        graph = reader.finish()
    assert len(graph) == 2
    assert set(graph.quanta_by_task) == {"step1"}
    got = {(d["exposure"], d["detector"]) for d in graph.quanta_by_task["step1"]}
    assert got == wanted


@pytest.mark.slow
def test_run_writes_all_outputs(butler, run1):
    summaries = by_data_id(butler, "calexpSummary", run1)
    metrics = by_data_id(butler, "step1_metrics", run1)
    expected = {(e, d) for e in (GOOD, POOR_SEEING, DOME_LIGHT) for d in DETECTORS}
    assert set(summaries) == expected and set(metrics) == expected
    visits = by_data_id(butler, "visitSummary", run1)
    visit_metrics = by_data_id(butler, "step2_metrics", run1)
    assert set(visits) == set(visit_metrics) == {(GOOD,), (POOR_SEEING,), (DOME_LIGHT,)}
    for (visit,), summary in visits.items():
        assert summary["n_detectors"] == len(DETECTORS)
        assert summary["exposures"] == [visit]
        assert summary["total_source_count"] == sum(summaries[(visit, d)]["source_count"] for d in DETECTORS)
        assert visit_metrics[(visit,)]["__reference_package"] == "demo_pipeline"


@pytest.mark.slow
def test_bad_exposures_stand_out(butler, run1):
    metrics = by_data_id(butler, "step1_metrics", run1)

    def values(exposure: int, name: str) -> list[float]:
        return [metric_value(metrics[(exposure, d)], name) for d in DETECTORS]

    # Poor seeing: the PSF is much wider on every detector.
    assert min(values(POOR_SEEING, "psf_fwhm")) > 1.3 * max(values(GOOD, "psf_fwhm"))
    # Dome light: the sky is several times brighter and the depth much shallower.
    assert min(values(DOME_LIGHT, "sky_background")) > 5 * max(values(GOOD, "sky_background"))
    assert max(values(DOME_LIGHT, "limiting_magnitude")) < min(values(GOOD, "limiting_magnitude")) - 2
    assert max(values(DOME_LIGHT, "source_count")) < min(values(GOOD, "source_count"))

    visit_metrics = by_data_id(butler, "step2_metrics", run1)
    assert metric_value(visit_metrics[(POOR_SEEING,)], "median_psf_fwhm") > 1.4
    assert metric_value(visit_metrics[(GOOD,)], "median_psf_fwhm") < 1.1
    assert metric_value(visit_metrics[(DOME_LIGHT,)], "median_sky_background") > 5 * metric_value(
        visit_metrics[(GOOD,)], "median_sky_background"
    )


@pytest.mark.slow
def test_steps_run_separately_give_the_same_result(butler, repo, run1):
    """The campaign way: step1 into one collection, then step2 with it as input."""
    pipetask(
        "run", "-b", repo, "-i", RAW, "-o", "u/test/step1", "--register-dataset-types",
        "-p", f"{PIPELINE}#step1", "-d", QUERY, "-j", "1",
    )  # fmt: skip
    pipetask(
        "run", "-b", repo, "-i", "u/test/step1", "-o", "u/test/step2", "--register-dataset-types",
        "-p", f"{PIPELINE}#step2", "-d", QUERY, "-j", "1",
    )  # fmt: skip
    assert by_data_id(butler, "visitSummary", "u/test/step2") == by_data_id(butler, "visitSummary", run1)
    # Metric identifiers are stable across runs too.
    assert by_data_id(butler, "step2_metrics", "u/test/step2") == by_data_id(butler, "step2_metrics", run1)


@pytest.mark.slow
def test_fail_data_ids_fail_only_those_quanta(butler, repo):
    output = "u/test/fail"
    result = pipetask(
        "run", "-b", repo, "-i", RAW, "-o", output, "--register-dataset-types", "-p", PIPELINE, "-d", QUERY,
        # ":" inside the pattern: pipetask -c refuses a value with a second "=".
        "-c", f"step1:failDataIds=['exposure:{POOR_SEEING},detector:1']", "-j", "1",
        check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "InjectedFailure" in result.stderr
    assert f"matches failDataIds entry 'exposure:{POOR_SEEING},detector:1'" in result.stderr
    summaries = by_data_id(butler, "calexpSummary", output)
    expected = {(e, d) for e in (GOOD, POOR_SEEING, DOME_LIGHT) for d in DETECTORS} - {(POOR_SEEING, 1)}
    assert set(summaries) == expected
    assert set(by_data_id(butler, "step1_metrics", output)) == expected
    # The visit with a failed detector is skipped downstream; the others complete.
    assert set(by_data_id(butler, "visitSummary", output)) == {(GOOD,), (DOME_LIGHT,)}


@pytest.mark.slow
def test_fault_injection_from_config_file_and_probability(butler, repo, tmp_path):
    from demo_pipeline.tasks import fail_draw

    overrides = tmp_path / "step1_overrides.py"
    overrides.write_text(f'config.failDataIds = ["exposure={DOME_LIGHT}"]\nconfig.failProbability = 0.3\n')
    output = "u/test/fail-prob"
    result = pipetask(
        "run", "-b", repo, "-i", RAW, "-o", output, "--register-dataset-types", "-p", f"{PIPELINE}#step1",
        "-d", QUERY, "-C", f"step1:{overrides}", "-j", "1",
        check=False,
    )  # fmt: skip
    assert result.returncode != 0
    all_ids = {(e, d) for e in (GOOD, POOR_SEEING, DOME_LIGHT) for d in DETECTORS}
    predicted_failures = {(DOME_LIGHT, d) for d in DETECTORS} | {
        (e, d)
        for e, d in all_ids
        if fail_draw("step1", 0, {"exposure": e, "detector": d, "instrument": "DemoCam"}) < 0.3
    }
    assert predicted_failures - {(DOME_LIGHT, d) for d in DETECTORS}, "the draw should pick another quantum too"
    assert set(by_data_id(butler, "calexpSummary", output)) == all_ids - predicted_failures


@pytest.mark.slow
def test_pipetask_c_rejects_a_second_equals_sign(repo):
    """Why failDataIds accepts key:value: the CLI splits ``-c`` on every '='."""
    result = pipetask(
        "qgraph", "-b", repo, "-i", RAW, "-o", "u/test/never", "-p", f"{PIPELINE}#step1", "-d", QUERY,
        "-c", f"step1:failDataIds=['exposure={GOOD}']",
        check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "Could not parse key-value pair" in result.stderr
