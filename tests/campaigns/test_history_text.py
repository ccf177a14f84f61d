"""A campaign's history in words (campaigns.history_text): pure functions, no database."""

from __future__ import annotations

from campaigns.history_text import describe, history_filter, split_text, step_text, value_text


def test_state_changes_are_worded_with_their_labels_and_keep_their_raw_states_for_badges():
    (line,) = describe({"step step2": ["waiting", "awaiting_approval"]})
    assert (line.label, line.old, line.new, line.state) == ("Step step2", "waiting", "awaiting approval", True)
    assert (line.old_state, line.new_state) == ("waiting", "awaiting_approval")
    (status,) = describe({"status": ["running", "paused"]})
    assert (status.label, status.old, status.new, status.state) == ("Status", "running", "paused", True)


def test_many_groups_moving_alike_become_one_line_naming_them():
    changes = {f"group step1/night-2025112{i}": ["waiting", "ready"] for i in range(5)}
    changes["group step1/odd"] = ["waiting", "cancelled"]
    lines = describe(changes)
    assert [(line.label, line.old, line.new) for line in lines] == [
        ("5 groups of step step1", "waiting", "ready"),
        ("Group step1/odd", "waiting", "cancelled"),
    ]
    assert lines[0].names == [f"night-2025112{i}" for i in range(5)]


def test_a_few_groups_keep_one_line_each():
    lines = describe({"group s/a": ["ready", "preflight"], "group s/b": ["ready", "preflight"]})
    assert [line.label for line in lines] == ["Group s/a", "Group s/b"]


def test_split_rules_are_described_in_words():
    assert split_text({"by": "night"}) == "one group per night"
    assert split_text({}) == "one group per night"
    assert split_text({"by": "visit", "max_size": 10}) == "groups of at most 10 visits"
    assert split_text({"by": "tract", "skymap": "demo"}) == "one group per tract (skymap: demo)"
    assert split_text({"by": "list", "groups": [{"name": "a", "where": "x"}, {"name": "b", "where": "y"}]}) == (
        "2 named groups (a, b)"
    )
    (line,) = describe({"step step2 split": [{"by": "night"}, {"by": "visit", "max_size": 10}]})
    assert (line.label, line.old, line.new, line.state) == (
        "Split of step step2",
        "one group per night",
        "groups of at most 10 visits",
        False,
    )


def test_definition_values_read_as_text_not_json():
    (steps,) = describe(
        {
            "steps": [
                None,
                [
                    {"name": "step1", "pipeline_subset": "step1", "depends_on": [], "requires_approval": False},
                    {"name": "step2", "pipeline_subset": "step2", "depends_on": ["step1"], "requires_approval": True},
                ],
            ]
        }
    )
    assert steps.old == "—"
    assert steps.new == "step1 (subset step1) | step2 (subset step2; after step1; needs approval)"
    (bps,) = describe({"bps": [{}, {"wms": "parsl", "extra": {"clusterAlgorithm": "x", "retries": 2}}]})
    assert bps.label == "BPS settings" and bps.new == "wms: parsl; extra: clusterAlgorithm: x; retries: 2"
    assert "{" not in bps.new and '"' not in bps.new
    assert value_text(True) == "yes" and value_text(["a", "b"]) == "a, b" and value_text(None) == "—"
    (field,) = describe({"input_collections": [["a"], ["a", "b"]]})
    assert (field.label, field.old, field.new) == ("Input collections", "a", "a, b")
    assert step_text({"name": "s", "split": {"by": "exposure", "max_size": 3}}) == "s (groups of at most 3 exposures)"


def test_the_history_tabs_are_all_definition_and_execution():
    assert history_filter("definition")[0] == "definition" and "edit" in history_filter("definition")[1]
    assert "execution" in history_filter("execution")[1] and "edit" not in history_filter("execution")[1]
    assert history_filter("nonsense") == ("all", None)
    assert history_filter(None) == ("all", None)
