"""Fixtures of the metrics tests: campaigns with metric values on a mirrored demo repo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.execution.conftest import make_exec_campaign, run_ready_groups, submit_root  # noqa: F401
from tests.metrics import factories


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def mirror(demo_repo):
    """The demo repo's exposure/detector mirror: 2 nights x 4 exposures, 9 detectors."""
    return {e.exposure_id: e for e in factories.mirror_rows(demo_repo)}


def psf_values(mirror, *, offset: float = 0.0, nan_at=None) -> dict:
    """A value per (exposure, detector): 0.7 + 0.01*seq + 0.001*detector (+ offset), NaN stored as None."""
    values = {}
    for exposure in mirror.values():
        for detector in range(9):
            key = (exposure.exposure_id, detector)
            values[key] = None if key == nan_at else round(0.7 + 0.01 * exposure.seq_num + 0.001 * detector + offset, 6)
    return values


@pytest.fixture
def campaign_a(make_campaign, mirror):
    return build_campaign_a(make_campaign, mirror)


@pytest.fixture
def campaign_b(make_campaign, mirror):
    return build_campaign_b(make_campaign, mirror)


def build_campaign_a(make_campaign, mirror):
    """psf-a: demo.psf_fwhm for every (exposure, detector), NaN for seq 1 of the first night, detector 0."""
    campaign = make_campaign(name="psf-a")
    step = campaign.steps.get(name="step1")
    factories.metric_values(
        campaign, "demo.psf_fwhm", psf_values(mirror, nan_at=(factories.exposure_id(20251121, 1), 0)),
        step=step, exposures=mirror,
    )  # fmt: skip
    return campaign


def build_campaign_b(make_campaign, mirror):
    """psf-b: psf-a + 0.05, one data ID 1.0 larger still, and one data ID not measured."""
    campaign = make_campaign(name="psf-b")
    values = psf_values(mirror, offset=0.05)
    # One data ID changes a lot; one is measured only by B's neighbour A (removed here).
    big = (factories.exposure_id(20251122, 3), 4)
    values[big] = values[big] + 1.0
    values.pop((factories.exposure_id(20251122, 4), 8))
    factories.metric_values(campaign, "demo.psf_fwhm", values, step=campaign.steps.get(name="step1"), exposures=mirror)
    return campaign


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
