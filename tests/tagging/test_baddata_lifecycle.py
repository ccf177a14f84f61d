"""The bad-data register: record by hand or from a failed quantum, open → explained → fixed with its history,
and the exclusion selector the selection builder uses."""

from __future__ import annotations

import uuid

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from tagging.models import BadDataEvent, BadDataRecord
from tagging.selectors_flags import bad_data_detectors, bad_data_exposures
from tagging.services.baddata import (
    bad_data_add,
    bad_data_edit,
    bad_data_from_failure,
    bad_data_set_status,
)

from .helpers import NIGHT, NIGHT2, exposure_id

pytestmark = pytest.mark.django_db


def record(user, data_id=None, **extra) -> BadDataRecord:
    fields = {"summary": "Saturated amplifier", "data_id": data_id}
    fields.update(extra)
    return bad_data_add(user=user, repo_label="demo", **fields)


def test_a_record_keeps_the_checked_data_id_in_typed_columns(owner, butler_repo):
    bad = record(
        owner,
        {"instrument": "DemoCam", "obs_id": f"DC_O_{NIGHT}_000152", "detector": "R22_S11"},
        links="https://jira.example.org/browse/DM-1",
    )
    assert bad.key == f"instrument=DemoCam,detector=4,exposure={exposure_id(152)}"
    assert (bad.instrument, bad.exposure, bad.detector, bad.visit) == ("DemoCam", exposure_id(152), 4, None)
    assert bad.status == "open" and bad.source == "manual" and bad.links == ["https://jira.example.org/browse/DM-1"]
    assert list(bad.events.values_list("action", "to_status")) == [("created", "open")]


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"data_id": {"instrument": "DemoCam", "exposure": 1, "detector": 0}}, "data_id"),
        ({"data_id": None}, "data_id"),
        ({"summary": " "}, "summary"),
        ({"dataset_id": "nope", "dataset_type": "raw"}, "dataset_id"),
        ({"links": "ftp://x"}, "links"),
        ({"status": "lost"}, "status"),
    ],
)
def test_a_bad_record_names_the_field_and_stores_nothing(owner, butler_repo, fields, key):
    data_id = fields.pop("data_id", {"instrument": "DemoCam", "exposure": exposure_id(150)})
    with pytest.raises(ValidationError) as caught:
        record(owner, data_id, **fields)
    assert key in caught.value.message_dict
    assert not BadDataRecord.objects.exists() and not BadDataEvent.objects.exists()


def test_a_dataset_alone_can_be_recorded(owner, butler_repo):
    dataset = uuid.uuid4()
    bad = record(owner, None, dataset_type="raw", dataset_id=str(dataset), collection="DemoCam/raw/all")
    assert bad.dataset_id == dataset and bad.key == "" and bad.exposure is None


def test_open_explained_fixed_with_every_change_in_the_history(owner, other_staff, butler_repo):
    bad = record(owner, {"instrument": "DemoCam", "exposure": exposure_id(150)})
    with pytest.raises(ValidationError, match="explanation"):
        bad_data_set_status(user=owner, record_id=bad.pk, status="explained")
    bad_data_set_status(
        user=other_staff, record_id=bad.pk, status="explained", explanation="Dome light", comment="seen"
    )
    bad_data_edit(user=owner, record_id=bad.pk, links=["https://jira.example.org/browse/DM-2"], comment="ticket")
    bad_data_set_status(user=owner, record_id=bad.pk, status="fixed", comment="reprocessed")
    bad.refresh_from_db()
    assert bad.status == "fixed" and bad.explanation == "Dome light"
    events = list(bad.events.order_by("at", "pk").values_list("action", "from_status", "to_status", "user__username"))
    assert events == [
        ("created", "", "open", "alice"),
        ("status", "open", "explained", "bob"),
        ("edited", "explained", "explained", "alice"),
        ("status", "explained", "fixed", "alice"),
    ]
    assert bad.events.get(action="edited").changes == {"links": [[], ["https://jira.example.org/browse/DM-2"]]}


def test_science_users_cannot_write_the_register(science_user, owner, butler_repo):
    with pytest.raises(PermissionDenied):
        record(science_user, {"instrument": "DemoCam", "exposure": exposure_id(150)})
    bad = record(owner, {"instrument": "DemoCam", "exposure": exposure_id(150)})
    with pytest.raises(PermissionDenied):
        bad_data_set_status(user=science_user, record_id=bad.pk, status="fixed")
    with pytest.raises(PermissionDenied):
        bad_data_edit(user=science_user, record_id=bad.pk, summary="x")
    assert BadDataRecord.objects.get().status == "open"


def test_a_failed_quantum_becomes_a_record_with_a_copy_of_the_failure(owner, failed_quantum):
    bad = bad_data_from_failure(user=owner, quantum_error_id=failed_quantum.pk)
    assert bad.source == "failure" and bad.quantum_error == failed_quantum
    assert bad.key == f"instrument=DemoCam,detector=1,exposure={exposure_id(151)}"
    assert bad.summary == "isr failed: Saturated amp C10"
    detail = bad.source_detail
    assert (detail["task_label"], detail["exception_type"], detail["attempt"]) == ("isr", "InjectedFailure", 1)
    assert detail["campaign_id"] == failed_quantum.submission.group.step.campaign_id
    assert bad.collection == failed_quantum.submission.run_collection
    assert bad_data_from_failure(user=owner, quantum_error_id=failed_quantum.pk) == bad  # twice: one record
    assert BadDataRecord.objects.count() == 1


def test_only_staff_who_may_see_the_campaign_record_its_failures(science_user, outsider, failed_quantum):
    for user in (science_user, outsider):
        with pytest.raises(PermissionDenied):
            bad_data_from_failure(user=user, quantum_error_id=failed_quantum.pk)
    assert not BadDataRecord.objects.exists()


def test_bad_data_exposures_are_the_open_and_explained_ones(owner, butler_repo):
    whole = record(owner, {"instrument": "DemoCam", "exposure": exposure_id(150)})
    one_detector = record(owner, {"instrument": "DemoCam", "exposure": exposure_id(151, NIGHT2), "detector": 3})
    fixed = record(owner, {"instrument": "DemoCam", "exposure": exposure_id(152)})
    bad_data_set_status(user=owner, record_id=fixed.pk, status="fixed")
    bad_data_set_status(user=owner, record_id=one_detector.pk, status="explained", explanation="known")
    assert sorted(bad_data_exposures(butler_repo).values_list("exposure_id", flat=True)) == [
        exposure_id(150),
        exposure_id(151, NIGHT2),
    ]
    assert list(bad_data_exposures(butler_repo, statuses=("open",)).values_list("exposure_id", flat=True)) == [
        exposure_id(150)
    ]
    assert list(bad_data_detectors(butler_repo)) == [(exposure_id(151, NIGHT2), None, 3)]
    # Usable as a subquery: the exposures a selection keeps.
    from tagging.models import Exposure

    kept = Exposure.objects.filter(repo=butler_repo, observation_type="science").exclude(
        exposure_id__in=bad_data_exposures(butler_repo)
    )
    assert exposure_id(150) not in set(kept.values_list("exposure_id", flat=True))
    assert whole.pk
