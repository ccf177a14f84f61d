"""`cm select count|freeze|rerun` against a real server, database and Butler repo (child processes)."""

# ruff: noqa: F811 - pytest fixtures imported from test_cli are named as test arguments

from __future__ import annotations

import json

import pytest

from tagging.models import DataIdSetVersion, Exposure
from tests.cli.test_cli import assert_one_error_line, cm, config_file, fast_password_hasher, token_for  # noqa: F401
from tests.tagging.selection_factories import add_flag

pytestmark = pytest.mark.django_db(transaction=True)

RECIPE = {
    "repo": "demo",
    "dimensions": ["exposure"],
    "terms": [{"where": "exposure.observation_type = 'science'"}, {"mode": "exclude", "flags": ["junk"]}],
}


@pytest.fixture
def recipe_file(tmp_path, butler_repo):
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(RECIPE))
    return path


def test_count_freeze_and_rerun(cm, recipe_file, owner):
    counted = cm("select", "count", str(recipe_file), as_user=owner)
    assert counted.returncode == 0, counted.stderr
    assert counted.stdout.splitlines()[0] == "8 data IDs (instrument, exposure) of 20"
    assert "Exclude exposures with a valid junk flag" in counted.stdout

    frozen = cm("select", "freeze", str(recipe_file), "--name", "science", "--reason", "all science", as_user=owner)
    assert frozen.returncode == 0, frozen.stderr
    assert frozen.stdout.startswith("Stored 8 data IDs as science v1: http")
    assert DataIdSetVersion.objects.get(dataid_set__name="science").source_kind == "selection"

    same = cm("select", "rerun", "science", as_user=owner)
    assert same.stdout.strip() == "science v1: frozen 8, now 8; unchanged."

    add_flag(exposure=Exposure.objects.get(exposure_id=2025112100152), flag="junk")
    changed = cm("select", "rerun", "science", "--json", as_user=owner)
    diff = json.loads(changed.stdout)
    assert (diff["added"], diff["removed"]) == (0, 1)
    assert diff["removed_examples"] == [{"instrument": "DemoCam", "exposure": 2025112100152}]


def test_errors_are_one_line(cm, recipe_file, tmp_path, science_user):
    bad = tmp_path / "bad.json"
    bad.write_text('{"repo": "demo", "terms": [{"where": "band = "}]}')
    line = assert_one_error_line(cm("select", "count", str(bad), as_user=science_user))
    assert "terms[0].where" in line
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert "is not JSON" in assert_one_error_line(cm("select", "count", str(broken), as_user=science_user))
    refused = cm("select", "freeze", str(recipe_file), "--name", "x", "--reason", "y", as_user=science_user)
    assert "Only staff members" in assert_one_error_line(refused)


def test_a_metric_term_counts_freezes_and_reruns_and_a_private_campaign_stays_hidden(
    cm, tmp_path, make_campaign, butler_repo, owner, other_staff
):
    # make_campaign registers a placeholder "demo" repo: butler_repo (after it) makes it the real one.
    from metrics.models import MetricValue
    from tests.metrics import factories

    campaign = make_campaign(name="psf-cli", visibility="private")
    science = list(Exposure.objects.filter(observation_type="science").order_by("exposure_id"))
    factories.metric_values(
        campaign,
        "psfMetrics.psf_fwhm",
        {(e.exposure_id, d): 0.6 + 0.1 * i for i, e in enumerate(science) for d in (0, 1)},
    )
    recipe = {
        "repo": "demo",
        "dimensions": ["exposure"],
        "terms": [{"metric": "psf_fwhm", "campaign": "psf-cli", "statistic": "max", "op": "<", "threshold": 0.95}],
    }
    path = tmp_path / "qa.json"
    path.write_text(json.dumps(recipe))
    counted = cm("select", "count", str(path), as_user=owner)
    assert counted.returncode == 0, counted.stderr
    assert counted.stdout.splitlines()[0] == "4 data IDs (instrument, exposure) of 20"
    assert "Include exposures whose max psf_fwhm over their detectors in campaign psf-cli is < 0.95" in counted.stdout
    frozen = cm("select", "freeze", str(path), "--name", "sharp", "--reason", "PSF < 0.95", as_user=owner)
    assert frozen.returncode == 0, frozen.stderr
    MetricValue.objects.filter(campaign=campaign, exposure=science[0].exposure_id).update(value=2.0)
    diff = json.loads(cm("select", "rerun", "sharp", "--json", as_user=owner).stdout)
    assert (diff["added"], diff["removed"]) == (0, 1)
    # bob may not view alice's private campaign: the same error as for a campaign that does not exist.
    hidden = assert_one_error_line(cm("select", "count", str(path), as_user=other_staff))
    recipe["terms"][0]["campaign"] = "no-such"
    path.write_text(json.dumps(recipe))
    missing = assert_one_error_line(cm("select", "count", str(path), as_user=other_staff))
    assert "no campaign named 'psf-cli' that you may see" in hidden
    assert hidden == missing.replace("no-such", "psf-cli")
