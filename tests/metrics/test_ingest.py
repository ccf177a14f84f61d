"""Ingest of metric values through the service and the API: each format, idempotency, bad input with its
errors (and the rest stored), outside sources against campaign runs."""

from __future__ import annotations

import io
import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from core.errors import InputError
from metrics.models import MetricValue
from metrics.services import metric_values_ingest
from tests.metrics.conftest import GOOD, OTHER, SAMPLES, bundle, flat_record

pytestmark = pytest.mark.django_db


def _ingest(user, **kwargs):
    kwargs.setdefault("repo_label", "demo")
    return metric_values_ingest(user=user, **kwargs)


def test_a_bundle_is_stored_with_its_action_prefix_and_nan_as_null(owner, butler_repo):
    report = _ingest(
        owner,
        stream=io.BytesIO(json.dumps(bundle()).encode()),
        data_id={"exposure": GOOD, "detector": 4},
        source="analysis-tools-w48",
    )
    assert report.as_dict() | {"problems": []} == {
        "read": 4, "stored": 4, "created": 4, "updated": 0, "unchanged": 0, "rejected": 0, "problems": [],
    }  # fmt: skip
    values = {v.metric: v for v in MetricValue.objects.all()}
    assert sorted(values) == [
        "psfShape.psfE1Median", "psfShape.psfFwhm", "skyBackground.skyMedian", "skyBackground.skyStdev",
    ]  # fmt: skip
    psf = values["psfShape.psfFwhm"]
    assert (psf.value, psf.unit) == (0.94, "arcsec")
    assert psf.data_id_key == f"instrument=DemoCam,exposure={GOOD},detector=4"
    # Implied values come from the exposure mirror, so dashboards filter without a join.
    assert (psf.day_obs, psf.band, psf.visit, psf.instrument) == (20251121, psf.band, GOOD, "DemoCam")
    assert psf.band
    assert psf.source == "analysis-tools-w48" and psf.source_key == "source:analysis-tools-w48"
    assert psf.campaign is None
    assert values["skyBackground.skyStdev"].value is None


def test_the_shared_sample_bundle_is_read(owner, butler_repo):
    with open(SAMPLES / "metric-bundle.json", "rb") as stream:
        report = _ingest(owner, stream=stream, data_id={"exposure": GOOD, "detector": 0}, source="sample")
    assert report.created == 4 and report.rejected == 0


def test_the_same_file_twice_is_stored_once(owner, butler_repo):
    data = json.dumps(bundle()).encode()
    first = _ingest(owner, stream=io.BytesIO(data), data_id={"exposure": GOOD, "detector": 4}, source="s")
    second = _ingest(owner, stream=io.BytesIO(data), data_id={"exposure": GOOD, "detector": 4}, source="s")
    assert (first.created, second.created, second.unchanged) == (4, 0, 4)
    assert MetricValue.objects.count() == 4
    # A changed value replaces the stored one (same measurement, new number).
    third = _ingest(owner, bundle=bundle(psf=1.5), data_id={"exposure": GOOD, "detector": 4}, source="s")
    assert (third.created, third.updated, third.unchanged) == (0, 1, 3)
    assert MetricValue.objects.get(metric="psfShape.psfFwhm").value == 1.5


def test_flat_records_as_a_json_list_and_as_json_lines(owner, butler_repo, write_json):
    records = [flat_record(GOOD, 4), flat_record(OTHER, 5, psfFwhm="NaN", psfE1Median=0.01)]
    as_list = write_json("records.json", records)
    as_lines = write_json("records.jsonl", records, lines=True)
    with open(as_list, "rb") as stream:
        report = _ingest(owner, stream=stream, source="sasquatch", units={"psfFwhm": "arcsec"})
    assert (report.created, report.rejected) == (4, 0)
    with open(as_lines, "rb") as stream:
        again = _ingest(owner, stream=stream, source="sasquatch", units={"psfFwhm": "arcsec"})
    assert (again.created, again.unchanged) == (0, 4)
    value = MetricValue.objects.get(metric="psfFwhm", exposure=GOOD)
    assert (value.value, value.unit, value.dataset_type) == (0.94, "arcsec", "psfShape_metrics")
    assert value.run == "DemoCam/runs/w48/20251121T120000Z" and value.timestamp.year == 2025
    assert MetricValue.objects.get(metric="psfFwhm", exposure=OTHER).value is None


def test_flat_records_with_an_action_get_its_prefix(owner, butler_repo):
    report = _ingest(owner, records=[flat_record(GOOD, 1)], action="psfShape", source="sasquatch")
    assert report.created == 2
    assert set(MetricValue.objects.values_list("metric", flat=True)) == {"psfShape.psfFwhm", "psfShape.psfE1Median"}


def test_what_cannot_be_placed_is_reported_and_the_rest_is_stored(owner, butler_repo, write_json):
    records = [
        flat_record(GOOD, 4),  # fine: 2 values
        flat_record(9999999999999, 4),  # unknown exposure
        flat_record(GOOD, 42),  # unknown detector
        {**flat_record(GOOD, 3), "units": {"psfFwhm": "furlongs-per-dram"}},  # unknown unit (psfE1Median is fine)
        flat_record(GOOD, 2, psfFwhm="wide", psfE1Median=0.002),  # one value is not a number
        "not a record",
    ]
    path = write_json("mixed.jsonl", records, lines=True)
    with open(path, "a") as handle:
        handle.write("{broken json\n")
    with open(path, "rb") as stream:
        report = _ingest(owner, stream=stream, source="sasquatch")
    problems = {(p["where"], p["key"]): p["message"] for p in report.problems}
    assert "exposure 9999999999999 is not in repo demo" in problems[("line 2", "exposure")]
    assert "detector 42 is not a detector of DemoCam" in problems[("line 3", "detector")]
    assert "unknown unit 'furlongs-per-dram'" in problems[("line 4", "psfFwhm.unit")]
    assert "not a number" in problems[("line 5", "psfFwhm")]
    assert "a record is a JSON object" in problems[("line 6", "")]
    assert "not valid JSON" in problems[("line 7", "")]
    assert report.rejected == 2 + 2 + 1 + 1 + 1 + 1
    # Stored: line 1 (2 values), line 4's psfE1Median, line 5's psfE1Median.
    assert report.created == 4 and MetricValue.objects.count() == 4


def test_input_that_cannot_be_read_stores_nothing(owner, butler_repo):
    with pytest.raises(InputError) as err:
        _ingest(owner, stream=io.BytesIO(b'[{"exposure": 1, "psfFwhm": 1}, {"exposure": '), source="s")
    assert err.value.problems[0]["where"] == "index 1"
    with pytest.raises(InputError, match="Not valid JSON"):
        _ingest(owner, stream=io.BytesIO(b'{"psfShape": [1, }'), fmt="bundle", data_id={"exposure": GOOD}, source="s")
    with pytest.raises(InputError, match="empty"):
        _ingest(owner, stream=io.BytesIO(b""), source="s")
    assert MetricValue.objects.count() == 0


def test_a_bundle_needs_its_data_id_and_a_known_repo_and_source(owner, butler_repo):
    with pytest.raises(ValidationError) as err:
        _ingest(owner, bundle=bundle(), source="s")
    assert "data_id" in err.value.message_dict
    with pytest.raises(ValidationError) as err:
        _ingest(owner, bundle=bundle(), data_id={"exposure": GOOD})
    assert "source" in err.value.message_dict
    with pytest.raises(ValidationError) as err:
        _ingest(owner, repo_label="nope", bundle=bundle(), data_id={"exposure": GOOD}, source="s")
    assert "Unknown Butler repo 'nope'" in err.value.message_dict["repo"][0]
    assert MetricValue.objects.count() == 0


def test_science_users_cannot_ingest(science_user, butler_repo):
    with pytest.raises(PermissionDenied):
        _ingest(science_user, bundle=bundle(), data_id={"exposure": GOOD}, source="s")


def test_values_tied_to_a_campaign_must_name_one_of_its_runs(owner, butler_repo, make_exec_campaign, monkeypatch):
    from campaigns.execution import campaign_launch
    from campaigns.execution.runner import submission_claim
    from campaigns.tasks import group_run

    monkeypatch.setattr(group_run, "delay", lambda group_id: None)
    campaign = make_exec_campaign()
    campaign_launch(user=owner, campaign_id=campaign.pk)
    group = campaign.steps.get(name="step1").groups.order_by("position").first()
    submission = submission_claim(group_id=group.pk)
    with pytest.raises(ValidationError) as err:
        _ingest(owner, campaign_id=campaign.pk, run="not/a/run", bundle=bundle(), data_id={"exposure": GOOD})
    assert "not a RUN collection" in err.value.message_dict["run"][0]
    report = _ingest(
        owner,
        campaign_id=campaign.pk,
        records=[flat_record(GOOD, 0, psfFwhm=1.0) | {"run": submission.run_collection}, flat_record(GOOD, 1)],
    )
    assert report.created == 1
    assert report.rejected == 2  # both values of the second record
    assert report.problems[0] == {
        "where": "index 1",
        "key": "run",
        "message": "'DemoCam/runs/w48/20251121T120000Z' is not a RUN collection of this campaign",
    }
    value = MetricValue.objects.get()
    assert (value.campaign_id, value.step_id, value.group_id) == (campaign.pk, group.step_id, group.pk)
    assert value.source_key == submission.run_collection and value.source == ""


def test_the_portable_upsert_gives_the_same_counts(owner, butler_repo, monkeypatch):
    """The path other databases than PostgreSQL take (SQLite for a quick local run), exercised here."""
    from metrics.ingest.store import Ingestor

    monkeypatch.setattr(Ingestor, "_upsert", Ingestor._upsert_portable)
    first = _ingest(owner, bundle=bundle(), data_id={"exposure": GOOD, "detector": 4}, source="s")
    again = _ingest(owner, bundle=bundle(), data_id={"exposure": GOOD, "detector": 4}, source="s")
    changed = _ingest(owner, bundle=bundle(psf=2.0), data_id={"exposure": GOOD, "detector": 4}, source="s")
    assert (first.created, again.unchanged, changed.updated, changed.unchanged) == (4, 4, 1, 3)
    assert MetricValue.objects.get(metric="psfShape.psfFwhm").value == 2.0
