"""Recipe validation: every problem names the path of the bad key, and a valid recipe is normalised."""

from __future__ import annotations

import pytest

from tagging.selection.recipe import RecipeError, describe_sample, describe_term, normalize_recipe


def problems_of(raw) -> dict[str, str]:
    with pytest.raises(RecipeError) as caught:
        normalize_recipe(raw)
    return {p["where"]: p["message"] for p in caught.value.problems}


def test_a_valid_recipe_gets_defaults_and_a_recorded_seed():
    recipe = normalize_recipe(
        {
            "repo": "demo",
            "dimensions": ["instrument", "exposure", "detector"],
            "terms": [{"where": "band = 'r'"}, {"mode": "exclude", "flags": "junk"}],
            "sample": {"size": 5},
        }
    )
    assert recipe["dimensions"] == ["exposure", "detector"]
    assert recipe["terms"][0] == {"mode": "include", "kind": "where", "where": "band = 'r'"}
    assert recipe["terms"][1]["flags"] == ["junk"]
    assert isinstance(recipe["sample"]["seed"], int)


def test_not_an_object_is_refused():
    assert "recipe" in problems_of(["repo", "demo"])


def test_every_bad_key_is_named_by_its_path():
    problems = problems_of(
        {
            "repo": 3,
            "dimensions": ["tract"],
            "colour": "blue",
            "terms": [
                {"mode": "maybe", "where": "band = 'r'"},
                {"tag_table": "seeing", "condition": 5},
                {"flags": ["junk", "broken"]},
                {"where": "band = ", "dataid_set": "x"},
                {},
                {"dataid_set": "s", "version": 0},
                {"where": "band = 'r' AND"},
                {"bad_data": ["lost"]},
                {"flags": ["junk"], "extra": 1},
            ],
            "sample": {"size": 0, "fraction": 0.5},
        }
    )
    assert "must be text" in problems["repo"]
    assert "dimensions" in problems
    assert "unknown key" in problems["colour"]
    assert "include or exclude" in problems["terms[0].mode"]
    assert "must be text" in problems["terms[1].condition"]
    assert "'broken'" in problems["terms[2].flags[1]"]
    assert "exactly one of" in problems["terms[3]"] and "where, dataid_set" in problems["terms[3]"]
    assert "exactly one of" in problems["terms[4]"]
    assert "version number" in problems["terms[5].version"]
    assert "not a valid Butler 'where' expression" in problems["terms[6].where"]
    assert "'lost'" in problems["terms[7].bad_data[0]"]
    assert "unknown key" in problems["terms[8].extra"]
    assert "either size" in problems["sample"]


def test_the_first_problem_is_in_the_message_with_the_total():
    with pytest.raises(RecipeError) as caught:
        normalize_recipe({"repo": "demo", "terms": [{"flags": []}, {"mode": "x", "flags": ["junk"]}]})
    assert caught.value.message.startswith("The recipe has a problem: terms[0].flags:")
    assert "(and 1 more)" in caught.value.message
    assert caught.value.total == 2


@pytest.mark.parametrize(
    ("sample", "path", "text"),
    [
        ({"size": 1.5}, "sample.size", "integer"),
        ({"fraction": 1.5}, "sample.fraction", "at most 1"),
        ({"fraction": 0.1, "seed": "x"}, "sample.seed", "integer"),
        ({"size": 3, "stratify": {"field": "colour"}}, "sample.stratify.field", "'colour'"),
        ({"size": 3, "stratify": {"field": "band", "bins": 0}}, "sample.stratify.bins", "between 1"),
        ({"size": 3, "stratify": {}}, "sample.stratify", "name a field"),
        ({"size": 3, "stratify": {"tag_table": "t"}}, "sample.stratify.column", "required"),
        ({"size": 3, "extra": 1}, "sample.extra", "unknown key"),
    ],
)
def test_sample_problems_name_their_key(sample, path, text):
    problems = problems_of({"repo": "demo", "sample": sample})
    assert text in problems[path]


def test_terms_and_samples_read_as_sentences():
    recipe = normalize_recipe(
        {
            "repo": "demo",
            "terms": [
                {"tag_table": "seeing", "condition": "fwhm < 1"},
                {"mode": "exclude", "dataid_set": "bad", "version": 2},
                {"mode": "exclude", "flags": ["junk", "questionable"]},
            ],
            "sample": {"fraction": 0.25, "seed": 7, "stratify": {"field": "band"}},
        }
    )
    assert describe_term(recipe["terms"][0]) == "Include rows of tag table seeing where fwhm < 1"
    assert describe_term(recipe["terms"][1]) == "Exclude DataID set bad v2"
    assert describe_term(recipe["terms"][2]) == "Exclude exposures with a valid junk or questionable flag"
    assert describe_sample(recipe["sample"]) == (
        "Random sample of 0.25 of the items (seed 7), following the distribution of band"
    )
