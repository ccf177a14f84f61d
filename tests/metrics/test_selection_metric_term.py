"""The selection recipe's ``metric`` term (registered by the metrics app in the tagging app's registry) on the
real demo repo's mirror and PostgreSQL: per exposure, visit and detector, from a campaign or an outside source,
combined with other terms, frozen, re-run and diffed; through the service, the API and what a user may see."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import F
from django.http import Http404

from metrics.models import MetricValue
from tagging.selection.compile import compile_recipe
from tagging.selection.recipe import RecipeError, describe_term, normalize_recipe
from tagging.selection.services import selection_count, selection_freeze, selection_rerun
from tests.metrics import factories
from tests.tagging.selection_factories import add_flag

pytestmark = pytest.mark.django_db

E = factories.exposure_id
NIGHTS = (20251121, 20251122)
SCIENCE = "exposure.observation_type = 'science'"
COUNT = "/api/v1/selections/count"


def psf(seq: int, detector: int) -> float:
    """0.7 for seq 150, +0.1 per seq, +0.001 per detector: medians 0.704, 0.804, 0.904, 1.004."""
    return round(0.7 + 0.1 * (seq - 150) + 0.001 * detector, 6)


@pytest.fixture
def measured(make_campaign, butler_repo):
    """A campaign with demo.psf_fwhm for the 8 science exposures x 9 detectors (NaN for 21/153 detector 0)."""
    campaign = make_campaign(name="psf-term")
    values = {
        (E(night, seq), d): None if (night, seq, d) == (20251121, 153, 0) else psf(seq, d)
        for night in NIGHTS
        for seq in range(150, 154)
        for d in range(9)
    }
    factories.metric_values(campaign, "demo.psf_fwhm", values, step=campaign.steps.get(name="step1"))
    # As the ingest does from the mirror: an exposure's visit (one-to-one in the demo) is filled in.
    MetricValue.objects.filter(campaign=campaign).update(visit=F("exposure"))
    return campaign


def recipe(*terms, dimensions=("exposure",)):
    return {"repo": "demo", "dimensions": list(dimensions), "terms": [{"where": SCIENCE}, *terms]}


def metric(**extra):
    return {"metric": "demo.psf_fwhm", "campaign": "psf-term", "op": "<", "threshold": 0.95, **extra}


def exposures(result) -> set[int]:
    return {row["exposure"] for row in result["preview"]}


def test_include_keeps_the_exposures_whose_median_over_detectors_passes(owner, measured):
    result = selection_count(user=owner, recipe=recipe(metric()))
    assert result["count"] == 6  # seq 150, 151, 152 of both nights; 153's median is 1.004
    assert exposures(result) == {E(n, s) for n in NIGHTS for s in (150, 151, 152)}
    term = result["terms"][1]
    assert (term["kind"], term["after"]) == ("metric", 6)
    assert term["label"] == (
        "Include exposures whose median demo.psf_fwhm over their detectors in campaign psf-term is < 0.95"
    )


def test_each_statistic_is_taken_over_the_detectors(owner, measured):
    # seq 152: detectors 0.900 .. 0.908. min < 0.905 passes, max < 0.905 does not, mean/median = 0.904 pass.
    def count(statistic):
        return selection_count(user=owner, recipe=recipe(metric(statistic=statistic, threshold=0.905)))["count"]

    assert count("min") == 6 and count("max") == 4 and count("mean") == 6 and count("median") == 6


def test_exclude_drops_the_exposures_that_match_and_keeps_those_without_values(owner, measured, butler_repo):
    result = selection_count(user=owner, recipe=recipe(metric(mode="exclude", op=">", threshold=0.95)))
    assert exposures(result) == {E(n, s) for n in NIGHTS for s in (150, 151, 152)}
    # Without the where term: exposures nobody measured (biases, flats) stay; an include would drop them.
    everything = {"repo": "demo", "dimensions": ["exposure"], "terms": []}
    total = selection_count(user=owner, recipe=everything)["count"]
    excluded = selection_count(
        user=owner, recipe={**everything, "terms": [metric(mode="exclude", op=">", threshold=0.95)]}
    )
    included = selection_count(user=owner, recipe={**everything, "terms": [metric(op="<=", threshold=0.95)]})
    assert excluded["count"] == total - 2 and included["count"] == 6


def test_per_detector_judges_each_detector_by_its_own_value(owner, measured):
    result = selection_count(
        user=owner,
        recipe=recipe(metric(per="detector", op=">", threshold=0.905), dimensions=("exposure", "detector")),
    )
    # seq 152: detectors 6, 7, 8 on both nights; seq 153: 9 detectors, minus the NaN of 21/153 detector 0.
    assert result["count"] == 2 * 3 + 9 + 8


def test_per_detector_needs_a_selection_of_detectors(owner, measured):
    with pytest.raises(RecipeError) as caught:
        selection_count(user=owner, recipe=recipe(metric(per="detector")))
    assert caught.value.problems[0]["where"] == "terms[1].per"


def test_per_visit_matches_visits_through_their_values(owner, measured):
    result = selection_count(user=owner, recipe=recipe(metric(per="visit"), dimensions=("visit",)))
    assert result["count"] == 6 and {row["visit"] for row in result["preview"]} == {
        E(n, s) for n in NIGHTS for s in (150, 151, 152)
    }


def test_a_short_metric_name_resolves_and_the_frozen_recipe_records_the_stored_name(owner, measured):
    version = selection_freeze(user=owner, recipe=recipe(metric(metric="psf_fwhm")), name="good-psf", reason="PSF")
    assert version.count == 6
    term = version.source["recipe"]["terms"][1]
    assert term == {
        "mode": "include",
        "kind": "metric",
        "metric": "demo.psf_fwhm",
        "campaign": "psf-term",
        "per": "exposure",
        "statistic": "median",
        "op": "<",
        "threshold": 0.95,
    }
    assert version.source["summary"][1] == describe_term(term)


def test_a_rerun_shows_what_new_metric_values_changed(owner, measured):
    version = selection_freeze(user=owner, recipe=recipe(metric()), name="good-psf", reason="PSF")
    assert selection_rerun(user=owner, version_id=version.pk)["unchanged"]
    # The campaign re-measured 22/153: now below the threshold on every detector.
    MetricValue.objects.filter(campaign=measured, exposure=E(20251122, 153)).update(value=0.5)
    diff = selection_rerun(user=owner, version_id=version.pk)
    assert (diff["added"], diff["removed"], diff["current_count"]) == (1, 0, 7)
    assert diff["added_examples"] == [{"instrument": "DemoCam", "exposure": E(20251122, 153)}]


def test_metric_terms_combine_with_flags_and_other_terms(owner, measured):
    from tagging.models import Exposure

    add_flag(exposure=Exposure.objects.get(exposure_id=E(20251121, 151)), flag="junk")
    result = selection_count(
        user=owner, recipe=recipe(metric(), {"mode": "exclude", "flags": ["junk"]}, {"where": "band = 'r'"})
    )
    assert [t["after"] for t in result["terms"]] == [8, 6, 5, result["count"]]
    assert E(20251121, 151) not in exposures(result)


def test_an_outside_source_is_selected_by_its_label(owner, butler_repo):
    MetricValue.objects.bulk_create(
        MetricValue(
            metric="quicklook.seeing",
            value=0.6 + 0.2 * (seq - 150),
            data_id_key=f"instrument=DemoCam,exposure={E(20251121, seq)}",
            instrument="DemoCam",
            exposure=E(20251121, seq),
            repo=butler_repo,
            source="quicklook",
            source_key="quicklook",
        )
        for seq in range(150, 154)
    )
    term = {"metric": "seeing", "source": "quicklook", "op": "<", "threshold": 1.0}
    result = selection_count(user=owner, recipe=recipe(term))
    assert exposures(result) == {E(20251121, 150), E(20251121, 151)}
    assert result["terms"][1]["label"].endswith("in outside source quicklook is < 1")
    with pytest.raises(RecipeError, match="no metric values from an outside source 'nightly'"):
        selection_count(user=owner, recipe=recipe({**term, "source": "nightly"}))


def test_a_user_cannot_select_by_the_metrics_of_a_private_campaign_they_cannot_see(
    make_campaign, owner, other_staff, butler_repo
):
    private = make_campaign(name="private-psf", visibility="private")
    factories.metric_values(private, "demo.psf_fwhm", {(E(20251121, 150), 0): 0.7})
    term = {"metric": "demo.psf_fwhm", "campaign": "private-psf", "op": "<", "threshold": 1}
    assert selection_count(user=owner, recipe=recipe(term))["count"] == 1  # its owner may
    with pytest.raises(Http404) as hidden:
        selection_count(user=other_staff, recipe=recipe(term))
    with pytest.raises(Http404) as missing:
        selection_count(user=other_staff, recipe=recipe({**term, "campaign": "no-such-campaign"}))
    # The same answer as for a campaign that does not exist: nothing says it is there.
    assert str(hidden.value) == str(missing.value).replace("no-such-campaign", "private-psf")
    assert "no campaign named 'private-psf' that you may see" in str(hidden.value)


def test_the_api_answers_404_for_a_private_campaigns_metrics_as_for_a_missing_campaign(
    api, make_campaign, other_staff, science_user, butler_repo
):
    private = make_campaign(name="private-psf", visibility="private")
    factories.metric_values(private, "demo.psf_fwhm", {(E(20251121, 150), 0): 0.7})
    term = {"metric": "demo.psf_fwhm", "op": "<", "threshold": 1}
    for user in (other_staff, science_user):
        hidden = api(user).post(COUNT, {"recipe": recipe({**term, "campaign": "private-psf"})}, format="json")
        missing = api(user).post(COUNT, {"recipe": recipe({**term, "campaign": "nope"})}, format="json")
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json()["detail"] == missing.json()["detail"].replace("nope", "private-psf")


def test_the_api_counts_and_freezes_a_metric_selection(api, owner, science_user, measured):
    counted = api(science_user).post(COUNT, {"recipe": recipe(metric())}, format="json")
    assert counted.status_code == 200 and counted.json()["count"] == 6
    frozen = api(owner).post(
        "/api/v1/selections/freeze", {"recipe": recipe(metric()), "name": "psf-ok", "reason": "PSF"}, format="json"
    )
    assert frozen.status_code == 201 and frozen.json()["count"] == 6
    rerun = api(science_user).post(
        "/api/v1/selections/rerun", {"version_id": frozen.json()["version_id"]}, format="json"
    )
    assert rerun.status_code == 404  # a private set of alice's
    rerun = api(owner).post("/api/v1/selections/rerun", {"version_id": frozen.json()["version_id"]}, format="json")
    assert rerun.status_code == 200 and rerun.json()["unchanged"]


def test_science_users_count_but_cannot_freeze(science_user, measured):
    assert selection_count(user=science_user, recipe=recipe(metric()))["count"] == 6
    with pytest.raises(PermissionDenied):
        selection_freeze(user=science_user, recipe=recipe(metric()), name="x", reason="y")


@pytest.mark.parametrize(
    ("term", "where", "message"),
    [
        ({"metric": "psf", "op": "<", "threshold": 1}, "terms[1]", "say where the values come from"),
        ({"metric": "psf", "campaign": "a", "source": "b", "op": "<", "threshold": 1}, "terms[1]", "not both"),
        ({"metric": "psf", "campaign": "a", "op": "=", "threshold": 1}, "terms[1].op", "'=' is not one of"),
        ({"metric": "psf", "campaign": "a", "op": "<", "threshold": "x"}, "terms[1].threshold", "finite number"),
        ({"metric": "psf", "campaign": "a", "op": "<", "threshold": 1, "per": "tract"}, "terms[1].per", "'tract'"),
        ({"metric": "psf", "campaign": "a", "op": "<", "threshold": 1, "statistic": "p90"}, "terms[1].statistic", ""),
        ({"metric": "a b", "campaign": "a", "op": "<", "threshold": 1}, "terms[1].metric", "not a metric name"),
        ({"metric": "psf", "source": "q", "step": "s", "op": "<", "threshold": 1}, "terms[1].step", "campaign"),
        ({"metric": "psf", "campaign": "a", "op": "<", "threshold": 1, "band": "r"}, "terms[1].band", "unknown key"),
    ],
)
def test_a_bad_metric_term_is_refused_naming_the_key(term, where, message):
    with pytest.raises(RecipeError) as caught:
        normalize_recipe(recipe(term))
    found = [p for p in caught.value.problems if p["where"] == where]
    assert found and message in found[0]["message"], caught.value.problems


def test_an_unknown_or_ambiguous_metric_name_is_refused_with_the_names_it_has(owner, measured):
    with pytest.raises(RecipeError, match=r"campaign psf-term has no metric 'seeing' \(it has: demo.psf_fwhm\)"):
        selection_count(user=owner, recipe=recipe(metric(metric="seeing")))
    factories.metric_values(measured, "other.psf_fwhm", {(E(20251121, 150), 0): 0.7})
    with pytest.raises(RecipeError, match=r"matches demo\.psf_fwhm, other\.psf_fwhm"):
        selection_count(user=owner, recipe=recipe(metric(metric="psf_fwhm")))


def test_a_step_limits_the_values_to_that_step(owner, measured):
    assert selection_count(user=owner, recipe=recipe(metric(step="step1")))["count"] == 6
    assert selection_count(user=owner, recipe=recipe(metric(step="step2")))["count"] == 0
    with pytest.raises(RecipeError, match="has no step 'step9'"):
        selection_count(user=owner, recipe=recipe(metric(step="step9")))


def test_a_sample_following_a_metric_reads_only_values_the_user_may_see(make_campaign, owner, other_staff, butler_repo):
    private = make_campaign(name="private-psf", visibility="private")
    factories.metric_values(private, "demo.psf_fwhm", {(E(20251121, seq), 0): 0.1 * seq for seq in range(150, 154)})
    sampled = recipe()
    sampled["sample"] = {"size": 8, "seed": 1, "stratify": {"metric": "demo.psf_fwhm", "bins": 2}}

    def stratum(user) -> float | None:
        """The value a sample stratifies exposure 21/151 by, as ``user`` may see the values."""
        sql, params = compile_recipe(normalize_recipe(sampled), user=user).sample_sql
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {sql} FROM tagging_exposure e WHERE e.exposure_id = %s", [*params, E(20251121, 151)]
            )
            return cursor.fetchone()[0]

    assert stratum(owner) == pytest.approx(15.1)
    assert stratum(other_staff) is None  # the private campaign's values do not reach bob's sample
    assert selection_count(user=other_staff, recipe=sampled)["count"] == 8


def test_a_campaign_of_another_repo_is_refused_naming_both_repos(owner, measured):
    from tagging.services import butler_repo_upsert

    butler_repo_upsert(label="other", config_uri="/tmp/no-repo-needed-here", default_instrument="DemoCam")
    with pytest.raises(RecipeError, match="campaign psf-term ran on repo demo; this selection is of other"):
        selection_count(user=owner, recipe={**recipe(metric()), "repo": "other", "terms": [metric()]})
