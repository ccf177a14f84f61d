"""Selections against the real demo Butler repo and PostgreSQL: include and exclude with every term type,
freeze into a DataID set, re-run and diff, the Butler fallback of where expressions, and sampling.

Tag rows and flags are made with the ORM factories of selection_factories (see there: to be switched
to the tag-table and flag services once they are merged)."""

from __future__ import annotations

from collections import Counter

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404

from core.errors import InputError
from lsst_adapter.dataids import query_data_ids
from tagging.models import DataIdSetVersion, Exposure, SourceKind, TagRow
from tagging.selection.recipe import RecipeError
from tagging.selection.services import selection_count, selection_freeze, selection_rerun
from tests.tagging.helpers import NIGHT, NIGHT2, exposure_id, ids
from tests.tagging.selection_factories import add_flag, add_tag_rows, make_tag_table

SCIENCE = "exposure.observation_type = 'science'"
# seeing and dome_open of the eight science exposures
SEEING = {
    (NIGHT, 150): (0.7, False),
    (NIGHT, 151): (0.8, False),
    (NIGHT, 152): (1.3, False),
    (NIGHT, 153): (0.9, True),
    (NIGHT2, 150): (0.6, False),
    (NIGHT2, 151): (0.9, False),
    (NIGHT2, 152): (0.5, False),
    (NIGHT2, 153): (0.7, False),
}


@pytest.fixture
def seeing_table(butler_repo, owner):
    table = make_tag_table(
        owner=owner,
        repo=butler_repo,
        name="seeing",
        key_dimensions=["instrument", "exposure"],
        columns=[("seeing", "float"), ("dome_open", "bool")],
        visibility="public",
    )
    add_tag_rows(
        table,
        [
            ({"instrument": "DemoCam", "exposure": exposure_id(seq, night)}, {"seeing": s, "dome_open": d})
            for (night, seq), (s, d) in SEEING.items()
        ],
        user=owner,
    )
    return table


def exposure(night: int, seq: int) -> Exposure:
    return Exposure.objects.get(exposure_id=exposure_id(seq, night))


@pytest.fixture
def world(butler_repo, owner, seeing_table, make_set):
    """A known-bad set (detectors of 22/152), a valid junk flag on 21/151, an invalidated junk flag on
    22/150 and a questionable flag on 22/153."""
    make_set("known-bad", ids([152], [0, 1], day_obs=NIGHT2))
    add_flag(exposure=exposure(NIGHT, 151), flag="junk")
    add_flag(exposure=exposure(NIGHT2, 150), flag="junk", is_valid=False)
    add_flag(exposure=exposure(NIGHT2, 153), flag="questionable")
    return butler_repo


def recipe(**extra):
    return {
        "repo": "demo",
        "dimensions": ["exposure"],
        "terms": [
            {"mode": "include", "where": SCIENCE},
            {"mode": "include", "tag_table": "seeing", "condition": "seeing < 1.0 AND NOT dome_open"},
            {"mode": "exclude", "dataid_set": "known-bad"},
            {"mode": "exclude", "flags": ["junk"]},
        ],
        **extra,
    }


def exposures_of(version: DataIdSetVersion) -> set[int]:
    return set(version.rows.values_list("exposure", flat=True))


def test_a_selection_includes_and_excludes_with_every_term_type(world, owner):
    result = selection_count(user=owner, recipe=recipe())
    assert result["start"] == 20
    assert [t["after"] for t in result["terms"]] == [8, 6, 5, 4]
    assert [t["engine"] for t in result["terms"]] == ["mirror"] * 4
    assert result["count"] == 4
    assert [p["exposure"] for p in result["preview"]] == [
        exposure_id(150),
        exposure_id(150, NIGHT2),
        exposure_id(151, NIGHT2),
        exposure_id(153, NIGHT2),
    ]
    assert result["preview"][0]["obs_id"] == "DC_O_20251121_000150"


def test_include_flags_keeps_only_flagged_exposures(world, owner):
    result = selection_count(user=owner, recipe={"repo": "demo", "terms": [{"flags": ["questionable", "junk"]}]})
    # the invalidated junk flag does not count
    assert {p["exposure"] for p in result["preview"]} == {exposure_id(151), exposure_id(153, NIGHT2)}


def test_per_detector_selection_joins_set_rows_on_detector(world, owner):
    result = selection_count(
        user=owner,
        recipe={
            "repo": "demo",
            "dimensions": ["exposure", "detector"],
            "terms": [{"where": "exposure = 2025112200152"}, {"mode": "exclude", "dataid_set": "known-bad"}],
        },
    )
    assert result["count"] == 7  # 9 detectors less the two in the set


def test_freeze_rerun_and_diff(world, owner):
    version = selection_freeze(user=owner, recipe=recipe(), name="good-science", reason="PSF study inputs")
    assert version.source_kind == SourceKind.SELECTION
    assert version.count == 4
    assert exposures_of(version) == {
        exposure_id(150),
        exposure_id(150, NIGHT2),
        exposure_id(151, NIGHT2),
        exposure_id(153, NIGHT2),
    }
    stored = version.source["recipe"]
    assert stored["terms"][2] == {"mode": "exclude", "kind": "dataid_set", "dataid_set": "known-bad", "version": 1}
    assert version.source["summary"][1] == "Include rows of tag table seeing where seeing < 1.0 AND NOT dome_open"

    unchanged = selection_rerun(user=owner, version_id=version.pk)
    assert unchanged["unchanged"] and unchanged["added"] == 0 and unchanged["removed"] == 0

    # Someone fixes the seeing of 21/152 and flags 22/153 as junk.
    row = TagRow.objects.get(table__name="seeing", exposure=exposure_id(152))
    row.values = {**row.values, "c1": 0.8}
    row.save()
    add_flag(exposure=exposure(NIGHT2, 153), flag="junk")
    diff = selection_rerun(user=owner, version_id=version.pk)
    assert (diff["added"], diff["removed"], diff["current_count"], diff["frozen_count"]) == (1, 1, 4, 4)
    assert diff["added_examples"] == [{"instrument": "DemoCam", "exposure": exposure_id(152)}]
    assert diff["removed_examples"] == [{"instrument": "DemoCam", "exposure": exposure_id(153, NIGHT2)}]


def test_a_frozen_recipe_keeps_the_set_version_it_used(world, owner, make_set):
    version = selection_freeze(user=owner, recipe=recipe(), name="good-science", reason="r")
    make_set("known-bad", ids([150, 152], [0], day_obs=NIGHT2))  # v2 of the set excludes one more exposure
    assert selection_count(user=owner, recipe=recipe())["count"] == 3
    assert selection_rerun(user=owner, version_id=version.pk)["unchanged"]


def test_rerun_of_a_set_that_is_not_a_selection_is_refused(world, owner):
    from tagging.models import DataIdSet

    plain = DataIdSet.objects.get(name="known-bad").versions.get()
    with pytest.raises(InputError, match="was not made by freezing a selection"):
        selection_rerun(user=owner, version_id=plain.pk)


def test_empty_selection_is_not_frozen(world, owner):
    with pytest.raises(InputError, match="empty; nothing was stored"):
        selection_freeze(
            user=owner, recipe={"repo": "demo", "terms": [{"where": "band = 'nope'"}]}, name="none", reason="r"
        )
    assert not DataIdSetVersion.objects.filter(dataid_set__name="none").exists()


@pytest.mark.parametrize(
    "where",
    [
        "band IN ('r', 'i') AND exposure.day_obs = 20251122",
        "exposure.seq_num > 150 AND NOT band = 'z'",
        "exposure IN (2025112100150..2025112100152)",
        "instrument = 'DemoCam' AND exposure.observation_type != 'science'",
        "exposure.target_name = 'DEEP-B' OR physical_filter = 'DemoCam-u'",
        "151 <= exposure.seq_num",
    ],
)
def test_where_on_the_mirror_agrees_with_the_butler(butler_repo, owner, butler_root, where):
    result = selection_count(user=owner, recipe={"repo": "demo", "terms": [{"where": where}]})
    assert result["terms"][0]["engine"] == "mirror"
    butler = {r["exposure"] for r in query_data_ids(butler_root, ["exposure"], where, default_instrument="DemoCam")}
    assert result["count"] == len(butler) > 0


def test_where_the_mirror_cannot_answer_goes_to_the_butler(butler_repo, owner):
    result = selection_count(user=owner, recipe={"repo": "demo", "terms": [{"where": "detector = 3 AND band = 'g'"}]})
    assert result["terms"][0]["engine"] == "butler"
    assert "needs detectors" in result["terms"][0]["note"]
    assert result["count"] == 2  # the g exposures 21/151 and 22/150
    per_detector = selection_count(
        user=owner,
        recipe={
            "repo": "demo",
            "dimensions": ["exposure", "detector"],
            "terms": [{"where": "detector = 3 AND band = 'g'"}],
        },
    )
    assert per_detector["terms"][0]["engine"] == "mirror"
    assert per_detector["count"] == 2


def test_a_bad_where_is_refused_naming_the_term(butler_repo, owner):
    with pytest.raises(RecipeError) as caught:
        selection_count(user=owner, recipe={"repo": "demo", "terms": [{"flags": ["junk"]}, {"where": "band = "}]})
    assert caught.value.problems[0]["where"] == "terms[1].where"


def test_a_bad_condition_is_refused_naming_the_term_and_column(world, owner):
    with pytest.raises(RecipeError) as caught:
        selection_count(
            user=owner, recipe={"repo": "demo", "terms": [{"tag_table": "seeing", "condition": "fwhm < 1"}]}
        )
    assert caught.value.message.startswith("terms[0].condition: No column named 'fwhm'")


def test_bad_data_term_excludes_what_the_register_holds_open(butler_repo, owner):
    from tagging.services.baddata import bad_data_add, bad_data_set_status

    whole = exposure_id(150, NIGHT)
    one_detector = exposure_id(151, NIGHT)
    fixed = exposure_id(152, NIGHT)
    bad_data_add(user=owner, repo_label="demo", summary="shutter", data_id={"instrument": "DemoCam", "exposure": whole})
    bad_data_add(
        user=owner,
        repo_label="demo",
        summary="hot amp",
        data_id={"instrument": "DemoCam", "exposure": one_detector, "detector": 4},
    )
    record = bad_data_add(
        user=owner, repo_label="demo", summary="was bad", data_id={"instrument": "DemoCam", "exposure": fixed}
    )
    bad_data_set_status(user=owner, record_id=record.pk, status="explained", explanation="ghost")
    bad_data_set_status(user=owner, record_id=record.pk, status="fixed", explanation="ghost")
    science = {"where": f"{SCIENCE} AND day_obs = {NIGHT}"}
    exclude = {"mode": "exclude", "bad_data": ["open", "explained"]}

    per_exposure = selection_count(user=owner, recipe={"repo": "demo", "terms": [science, exclude]})
    # A record of one detector leaves its whole exposure out of a selection of exposures; fixed ones stay in.
    assert per_exposure["count"] == 2
    assert sorted(r["exposure"] for r in per_exposure["preview"]) == [exposure_id(152, NIGHT), exposure_id(153, NIGHT)]

    per_detector = selection_count(
        user=owner, recipe={"repo": "demo", "dimensions": ["exposure", "detector"], "terms": [science, exclude]}
    )
    # 4 exposures x 9 detectors, minus the whole exposure (9) and one detector of another (1).
    assert per_detector["count"] == 4 * 9 - 9 - 1
    kept = {(r["exposure"], r["detector"]) for r in per_detector["preview"]}
    assert (whole, 0) not in kept and (one_detector, 4) not in kept


# --- sampling ----------------------------------------------------------------------------------------


def science_detectors(sample: dict) -> dict:
    return {"repo": "demo", "dimensions": ["exposure", "detector"], "terms": [{"where": SCIENCE}], "sample": sample}


def selected(owner, sample: dict, name: str) -> list[tuple[int, int]]:
    version = selection_freeze(user=owner, recipe=science_detectors(sample), name=name, reason="sample")
    return sorted(version.rows.values_list("exposure", "detector"))


def test_sampling_is_reproducible_with_its_seed(butler_repo, owner):
    first = selected(owner, {"size": 10, "seed": 1}, "s1")
    again = selected(owner, {"size": 10, "seed": 1}, "s1b")
    other = selected(owner, {"size": 10, "seed": 2}, "s2")
    assert len(first) == 10 and first == again and first != other
    assert selection_count(user=owner, recipe=science_detectors({"fraction": 0.5, "seed": 3}))["count"] == 36


def test_a_sample_without_a_seed_records_the_one_it_used(butler_repo, owner):
    version = selection_freeze(user=owner, recipe=science_detectors({"size": 5}), name="s", reason="sample")
    seed = version.source["recipe"]["sample"]["seed"]
    assert isinstance(seed, int)
    assert selection_rerun(user=owner, version_id=version.pk)["unchanged"]


def test_a_stratified_sample_follows_the_distribution(butler_repo, owner):
    rows = selected(owner, {"size": 36, "seed": 5, "stratify": {"field": "band"}}, "strat")
    bands = dict(Exposure.objects.values_list("exposure_id", "band"))
    counts = Counter(bands[e] for e, _ in rows)
    # 72 science detector-exposures: u 9, g 18, r 18, i 18, z 9 -> half of each
    assert sum(counts.values()) == 36
    assert counts["g"] == counts["r"] == counts["i"] == 9
    assert {counts["u"], counts["z"]} <= {4, 5}


def test_a_sample_stratified_by_a_tag_column_in_bins(world, owner):
    result = selection_count(
        user=owner,
        recipe={
            "repo": "demo",
            "terms": [{"where": SCIENCE}],
            "sample": {"size": 4, "seed": 9, "stratify": {"tag_table": "seeing", "column": "seeing", "bins": 2}},
        },
    )
    seeing = {exposure_id(seq, night): s for (night, seq), (s, _) in SEEING.items()}
    picked = sorted(seeing[p["exposure"]] for p in result["preview"])
    assert len(picked) == 4
    # two from the better half (0.5 .. 0.7) and two from the worse half (0.8 .. 1.3)
    assert sum(1 for s in picked if s <= 0.7) == 2


# --- permissions -------------------------------------------------------------------------------------


def test_science_user_counts_but_cannot_freeze(world, science_user):
    public_only = recipe()
    del public_only["terms"][2]  # the set is private to its owner; the tag table is public
    assert selection_count(user=science_user, recipe=public_only)["count"] == 5
    with pytest.raises(PermissionDenied):
        selection_freeze(user=science_user, recipe=public_only, name="x", reason="y")
    assert not DataIdSetVersion.objects.filter(dataid_set__name="x").exists()


def test_private_tables_and_sets_are_404_naming_the_term(world, other_staff, seeing_table):
    with pytest.raises(Http404, match=r"terms\[2\]: no DataID set named 'known-bad' in demo that you may see"):
        selection_count(user=other_staff, recipe=recipe())
    seeing_table.visibility = "private"
    seeing_table.save()
    with pytest.raises(Http404, match=r"terms\[1\]: no tag table named 'seeing'"):
        selection_count(user=other_staff, recipe=recipe())


def test_anonymous_cannot_count(world):
    from django.contrib.auth.models import AnonymousUser

    with pytest.raises(PermissionDenied):
        selection_count(user=AnonymousUser(), recipe=recipe())
