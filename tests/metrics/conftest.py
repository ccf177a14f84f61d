"""Fixtures of the metrics tests: campaigns with metric values on a mirrored demo repo."""

from __future__ import annotations

import pytest

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
