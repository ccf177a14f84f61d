"""`cm metrics ingest|list|reobserve|exposure` against a live server, a real database and the session's Butler repo."""

# ruff: noqa: F811 - pytest fixtures imported from other test modules are named as test arguments

from __future__ import annotations

import csv
import io
import json

import pytest

from metrics.models import MetricValue
from tests.cli.test_cli import assert_one_error_line, cm, config_file, fast_password_hasher, token_for  # noqa: F401
from tests.metrics.conftest import GOOD, OTHER, bundle, flat_record, make_exec_campaign, submit_root  # noqa: F401
from tests.metrics.test_api import with_values  # noqa: F401
from tests.metrics.test_exposure_processing import EXPOSURE, world  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def test_ingest_a_bundle_then_list_it(cm, owner, science_user, butler_repo, tmp_path):
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle()))
    args = ["metrics", "ingest", str(path), "--repo", "demo", "--source", "nightly-qa"]
    result = cm(*args, "--data-id", f"exposure={GOOD}", "--data-id", "detector=4", as_user=owner)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Stored 4 of 4 values from " + str(path) + ": 4 new, 0 changed, 0 unchanged."
    again = cm(*args, "--data-id", f"exposure={GOOD},detector=4", as_user=owner)
    assert "0 new, 0 changed, 4 unchanged" in again.stdout
    assert MetricValue.objects.count() == 4
    names = cm("metrics", "list", "--names", as_user=science_user)
    assert names.returncode == 0, names.stderr
    assert names.stdout.split("\n")[0].split() == ["psfShape.psfE1Median", "-", "1"]
    values = cm("metrics", "list", "--metric", "psfFwhm", "--json", as_user=science_user)
    (value,) = json.loads(values.stdout)
    assert (value["value"], value["unit"], value["source"]) == (0.94, "arcsec", "nightly-qa")


def test_ingest_reports_what_it_could_not_place(cm, owner, butler_repo, tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [flat_record(GOOD, 1), flat_record(GOOD, 99)]) + "\n")
    result = cm("metrics", "ingest", str(path), "--repo", "demo", "--source", "sasquatch", as_user=owner)
    assert result.returncode == 0, result.stderr
    assert "Stored 2 of 4 values" in result.stdout and "Not stored (2):" in result.stdout
    assert "line 2, key detector: detector 99 is not a detector of DemoCam" in result.stdout


def test_ingest_refusals_are_one_line(cm, owner, science_user, butler_repo, tmp_path):
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle()))
    line = assert_one_error_line(cm("metrics", "ingest", str(path), "--repo", "demo", as_user=owner))
    assert "--campaign" in line and "--source" in line
    refused = cm("metrics", "ingest", str(path), "--source", "s", "--data-id", f"exposure={GOOD}", as_user=science_user)
    assert "Only staff members can ingest metrics" in assert_one_error_line(refused)
    missing = cm("metrics", "ingest", str(tmp_path / "nope.json"), "--source", "s", as_user=owner)
    assert "cannot read" in assert_one_error_line(missing)


def test_reobserve_writes_csv(cm, science_user, with_values, tmp_path):
    campaign = with_values()
    out = tmp_path / "reobserve.csv"
    result = cm(
        "metrics", "reobserve", "--campaign", campaign.name, "--metric", "psf_fwhm", "--op", ">", "--threshold", "1.2",
        "--format", "csv", "-o", str(out), as_user=science_user,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [int(r["exposure"]) for r in rows] == [GOOD] and rows[0]["source_campaign"] == campaign.name
    assert str(OTHER) not in out.read_text()


def test_exposure_prints_the_campaigns_that_processed_it_with_groups_and_metrics(cm, world, science_user):
    result = cm("metrics", "exposure", str(EXPOSURE), "--repo", "demo", as_user=science_user)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert f"Exposure {EXPOSURE} (DemoCam, repo demo):" in text
    assert "  failed-run (" in text and "group step1/seq151: failed" in text
    assert "no metric values for this exposure" in text
    assert "demo.psf_fwhm" in text and "over 2 value(s)" in text
    assert "dark: not known yet" in text and "secret" not in text  # private: not for this user
    as_json = json.loads(cm("metrics", "exposure", str(EXPOSURE), "--json", as_user=science_user).stdout)
    assert {c["name"] for c in as_json["campaigns"]} == {"failed-run", "measured"}
    missing = cm("metrics", "exposure", "99", "--repo", "demo", as_user=science_user)
    assert missing.returncode != 0 and "No exposure 99" in missing.stderr
