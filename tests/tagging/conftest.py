"""Fixtures for the DataID-set and exposure tests.

The Butler repo is the real one of the ``butler_root`` fixture (DemoCam, detectors 0..8 named
R22_S00..R22_S22, nights 20251121 and 20251122 with calibrations seq 1..6 and science seq 150..153).
Sets are made through the real services.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from campaigns.models import QuantumError
from tagging.models import DataIdSetVersion
from tagging.services import UploadSource, dataidset_create


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def make_set(butler_repo, owner) -> Callable[..., DataIdSetVersion]:
    """Store a set (or a new version) from a list of data IDs through the real service."""

    def make(name: str, records: list[dict[str, Any]], *, user=None, visibility: str = "private", **extra):
        return dataidset_create(
            user=user or owner,
            repo_label="demo",
            name=name,
            reason=f"test set {name}",
            source=UploadSource(kind="records", records=records),
            visibility=visibility,
            **extra,
        )

    return make


FAIL_ID = {"instrument": "DemoCam", "exposure": 2025112100151, "detector": 1}


@pytest.fixture
def failed_quantum(owner, butler_repo, settings, tmp_path) -> QuantumError:
    """A failed quantum recorded by the executor's own functions (the run's outcome given, as in its tests)."""
    import uuid

    from campaigns import services as campaign_services
    from campaigns.execution import campaign_launch
    from campaigns.execution.runner import submission_claim, submission_record_prepared, submission_record_result
    from lsst_adapter.bps import FailedQuantum, GroupProgress, PreparedWorkflow
    from tests.conftest import definition

    settings.CM_SUBMIT_ROOT = tmp_path / "submit"
    campaign = campaign_services.campaign_create(
        user=owner,
        data=definition(
            name=f"bad-{uuid.uuid4().hex[:6]}",
            data_query="exposure.observation_type = 'science' AND detector IN (0, 1) AND exposure.seq_num IN (150, 151)",
        ),
    )
    campaign_launch(user=owner, campaign_id=campaign.pk)
    group = campaign.steps.order_by("position").first().groups.order_by("position").first()
    sub = submission_claim(group_id=group.pk, task_id="t1", worker_name="w@h")
    prepared = PreparedWorkflow(
        run_name="r",
        submit_dir=sub.submit_dir,
        qgraph_file=f"{sub.submit_dir}/g.qg",
        quanta=4,
        quanta_by_task={"isr": 4},
        jobs=6,
        wms_service_class="lsst.ctrl.bps.parsl.ParslService",
        butler_config="repo",
        output=sub.output_collection,
        output_run=sub.run_collection,
        prepare_seconds=0.1,
    )
    assert submission_record_prepared(submission_id=sub.pk, prepared=prepared)
    failure = FailedQuantum("isr", dict(FAIL_ID), "InjectedFailure", "Saturated amp C10\nmore", log="/tmp/job.log")
    progress = GroupProgress(total=4, succeeded=3, failed=1, state="FAILED", finished=True, failures=[failure])
    submission_record_result(submission_id=sub.pk, progress=progress)
    return QuantumError.objects.get(submission=sub)
