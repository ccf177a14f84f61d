"""Fixtures of the metrics tests: the session's real Butler repo (with its mirror), campaigns launched on it
(reusing the executor tests' helpers), and metric files written the way outside tools write them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.execution.conftest import make_exec_campaign, run_ready_groups, submit_root  # noqa: F401

GOOD = 2025112100150  # science exposures of the test repo: 2025112{1,2}00150..153, detectors 0..8
OTHER = 2025112100151
SAMPLES = Path("/work/shared/samples")


def bundle(psf: float | None = 0.94, sky: float | None = 1532.4, unit: str = "arcsec") -> dict:
    """A bundle in the shape analysis_tools writes (see samples/metric-bundle.json)."""
    return {
        "psfShape": [
            {"metric": "analysis_tools.psfFwhm", "identifier": "a1", "value": psf, "unit": unit, "blob_refs": []},
            {"metric": "analysis_tools.psfE1Median", "identifier": "a2", "value": -0.0031, "unit": "", "blob_refs": []},
        ],
        "skyBackground": [
            {"metric": "analysis_tools.skyMedian", "identifier": "a3", "value": sky, "unit": "ct", "blob_refs": []},
            {"metric": "analysis_tools.skyStdev", "identifier": "a4", "value": None, "unit": "ct", "blob_refs": []},
        ],
        "__reference_package": "analysis_tools",
        "__timestamp_version": "run_timestamp",
        "__dataset_identifier": "DemoCam/runs/w48",
    }


def flat_record(exposure: int = GOOD, detector: int = 4, **metrics) -> dict:
    """One record in the shape of the Sasquatch dispatcher (identifier fields empty when absent)."""
    record = {
        "instrument": "DemoCam", "exposure": exposure, "visit": "", "detector": detector, "tract": "", "patch": "",
        "band": "", "skymap": "", "day_obs": "", "physical_filter": "", "group": "",
        "run": "DemoCam/runs/w48/20251121T120000Z", "dataset_type": "psfShape_metrics", "timestamp": 1763726400.0,
        "reference_package": "analysis_tools",
    }  # fmt: skip
    record.update(metrics or {"psfFwhm": 0.94, "psfE1Median": -0.0031})
    return record


@pytest.fixture
def write_json(tmp_path):
    def write(name: str, data, *, lines: bool = False) -> Path:
        path = tmp_path / name
        if lines:
            path.write_text("".join(json.dumps(r) + "\n" for r in data))
        else:
            path.write_text(json.dumps(data))
        return path

    return write
