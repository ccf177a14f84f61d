"""The history on the campaign page: paginated, definition edits apart from execution events, in words."""

from __future__ import annotations

import re

import pytest

from campaigns import services
from tests.execution.attention import waiting_campaign

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    from campaigns.tasks import group_run

    monkeypatch.setattr(group_run, "delay", lambda group_id: None)


def _entries(html: str) -> list[str]:
    history = html.split('id="history"', 1)[1].split("</section>", 1)[0]
    return re.findall(r'<li class="hentry hentry-([a-z-]+)">', history)


def _history(html: str) -> str:
    return html.split('id="history"', 1)[1].split("</section>", 1)[0]


def test_the_history_is_paginated_newest_first(make_campaign, owner, client):
    campaign = make_campaign()
    for i in range(34):
        campaign = services.campaign_update(
            user=owner, campaign_id=campaign.pk, version=campaign.version, data={"scope": f"night {i}"}
        )
    client.force_login(owner)
    first = client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert _entries(first) == ["edit"] * 30
    assert "1–30 of 35 entries" in first and "Page 1 of 2" in first
    assert "night 33" in _history(first) and ">night 2<" not in _history(first)  # edits 4..33 (old values 3..32)
    older = re.search(r'href="(\?history=all&amp;history_page=2#history)"', first)
    assert older is not None
    second = client.get(f"/campaigns/{campaign.pk}/" + older.group(1).replace("&amp;", "&")).content.decode()
    assert _entries(second) == ["edit"] * 4 + ["create"]
    assert "Page 2 of 2" in second and "‹ Newer" in second and ">night 2<" in _history(second)


def test_definition_edits_and_execution_events_are_separate_tabs_in_words(make_exec_campaign, owner, client, api):
    waiting = waiting_campaign(make_exec_campaign, owner, step2_split={"by": "visit", "max_size": 50})
    campaign = waiting.campaign
    client.force_login(owner)

    definition = client.get(f"/campaigns/{campaign.pk}/?history=definition").content.decode()
    assert set(_entries(definition)) == {"create", "edit"}  # the split of step2 is a definition edit
    text = _history(definition)
    # The split is part of the steps' definition: the edit shows the steps before and after, in words.
    assert "step2 (subset step2; after step1; needs approval; groups of at most 50 visits)" in text
    assert "step1 (subset step1) | step2 (subset step2; after step1; needs approval)" in text
    assert '{"' not in text and "[&quot;" not in text and '["' not in text  # no raw JSON

    execution = client.get(f"/campaigns/{campaign.pk}/?history=execution").content.decode()
    kinds = set(_entries(execution))
    assert kinds <= {"launch", "execution", "status", "approve"} and {"launch", "execution"} <= kinds
    text = _history(execution)
    assert "Step step2" in text and '<span class="badge badge-awaiting_approval">awaiting approval</span>' in text
    assert "Group extra/night-20251121" in text and '<span class="badge badge-failed">failed</span>' in text
    # A normal transition is two state badges, not a struck-out old value next to a new one.
    row = re.search(r"<th scope=\"row\">Group step1/n1</th>(.*?)</tr>", text, re.S)
    assert row is not None and 'class="state"' in row.group(1) and 'class="old"' not in row.group(1)
    assert "executor" in text  # the executor's entries are named, not "system"
    # The API (and so `cm campaign history`) words them the same way.
    entries = api(owner).get(f"/api/v1/campaigns/{campaign.pk}/history/?page_size=200").json()["results"]
    lines = [line for entry in entries for line in entry["lines"]]
    assert "Step step2: waiting → awaiting approval" in lines
    assert (
        "Steps: step1 (subset step1) | step2 (subset step2; after step1; needs approval) | extra (subset step1) → "
        "step1 (subset step1) | step2 (subset step2; after step1; needs approval; groups of at most 50 visits) | "
        "extra (subset step1)"
    ) in lines
    everything = client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert len(_entries(everything)) == len(_entries(definition)) + len(_entries(execution))
    assert 'id="history-tab-all"' in everything and 'class="tab active" aria-current="true" id="history-tab-all"' in (
        everything
    )
