"""Helpers of the executor tests: campaigns on the session's real Butler repo, run group by group in-process."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from campaigns import services
from campaigns.models import Campaign, Group
from tests.conftest import definition

NIGHTS = (20251121, 20251122)
SCIENCE = "exposure.observation_type = 'science' AND detector IN (0, 1) AND exposure.seq_num IN (150, 151)"
# One job per exposure for step1 (fewer pipetask process starts); step2 keeps one job per visit.
CLUSTER_BY_EXPOSURE = {
    "clusterAlgorithm": "lsst.ctrl.bps.quantum_clustering_funcs.dimension_clustering",
    "cluster": {"step1": {"pipetasks": "step1", "dimensions": "exposure"}},
}


@pytest.fixture(autouse=True)
def submit_root(settings, tmp_path):
    settings.CM_SUBMIT_ROOT = tmp_path / "submit"
    return settings.CM_SUBMIT_ROOT


@pytest.fixture
def make_exec_campaign(owner, butler_repo) -> Callable[..., Campaign]:
    """A two-step campaign on the test repo with a unique name (collections persist in the session repo)."""

    def make(**overrides: Any) -> Campaign:
        name = overrides.pop("name", f"exec-{uuid.uuid4().hex[:8]}")
        data = definition(
            name=name,
            pipeline="demo/pipelines/drp.yaml",
            data_query=SCIENCE,
            input_collections=["DemoCam/raw/all"],
            bps={"compute_site": "local_threads", "wms": "parsl", "extra": dict(CLUSTER_BY_EXPOSURE)},
        )
        data.update(overrides)
        return services.campaign_create(user=owner, data=data)

    return make


def run_ready_groups(campaign: Campaign) -> list[str]:
    """Run every ready group of the campaign through the real task function, in this process."""
    from campaigns.tasks import group_run

    results = []
    for group in Group.objects.filter(step__campaign=campaign, status="ready").order_by("step__position", "position"):
        results.append(group_run(group.pk))
    return results


def new_name() -> str:
    return f"exec-{uuid.uuid4().hex[:8]}"
