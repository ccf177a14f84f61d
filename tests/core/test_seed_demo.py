"""`make run`'s demo data: people, campaigns of several types and states, one launched for real."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from campaigns.models import Campaign, Group
from core.roles import role_of

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_worker(monkeypatch, settings, tmp_path):
    from campaigns.tasks import group_run

    settings.CM_SUBMIT_ROOT = tmp_path / "submit"
    monkeypatch.setattr(group_run, "delay", lambda group_id: None)


def test_seed_demo_creates_people_and_campaigns_and_launches_the_mini_drp(butler_repo, capsys):
    call_command("seed_demo")
    out = capsys.readouterr().out
    User = get_user_model()
    roles = {u.username: role_of(u) for u in User.objects.filter(username__in=["admin", "alice", "bob", "carol"])}
    assert roles == {"admin": "admin", "alice": "staff", "bob": "staff", "carol": "science"}
    for name in ("alice", "bob", "carol", "admin"):
        assert f"{name}-demo-2025" in out  # the passwords are printed
        assert User.objects.get(username=name).check_password(f"{name}-demo-2025")
    campaigns = {c.name: c for c in Campaign.objects.all()}
    assert len(campaigns) == 6
    assert len({c.campaign_type for c in campaigns.values()}) >= 5
    assert {c.status for c in campaigns.values()} >= {"draft", "ready", "running", "succeeded", "failed"}
    w48 = campaigns["w48-minidrp"]
    assert w48.status == "running"
    step1 = Group.objects.filter(step__campaign=w48, step__name="step1")
    assert step1.count() == 2 and set(step1.values_list("status", flat=True)) == {"ready"}
    # The DRP shape: steps 3 and 4 cut by tract of the demo skymap (g and r visits of DEEP-A and DEEP-B).
    for step in ("step3", "step4"):
        names = (
            Group.objects.filter(step__campaign=w48, step__name=step)
            .order_by("position")
            .values_list("name", flat=True)
        )
        assert list(names) == ["tract-0", "tract-1", "tract-2", "tract-3"]


def test_seed_demo_twice_changes_nothing(butler_repo, capsys):
    call_command("seed_demo")
    before = sorted(Campaign.objects.values_list("name", "version"))
    call_command("seed_demo")
    assert "0 campaign(s) created" in capsys.readouterr().out
    assert sorted(Campaign.objects.values_list("name", "version")) == before


def test_seed_demo_records_what_people_know_about_the_demo_data(butler_repo, capsys):
    from tagging.models import DataIdSet, ExposureFlag, TagTable

    call_command("seed_demo")
    out = capsys.readouterr().out
    table = TagTable.objects.get(name="night-log-seeing")
    assert table.row_count == butler_repo.exposures.filter(observation_type="science").count()
    assert table.row_changes.count() == table.row_count  # made through the service: each row has its history
    junk = ExposureFlag.objects.get(exposure_flag="junk", is_valid=True)
    version = DataIdSet.objects.get(name="good-seeing").versions.get()
    assert version.source_kind == "selection" and version.count > 0
    assert "DataID set good-seeing" in out
    # The frozen selection left the junk exposure out.
    from tagging.selectors import dataidset_rows

    exposures = {row[version.dimensions.index("exposure")] for row in dataidset_rows(version=version)}
    assert junk.exposure not in exposures
    call_command("seed_demo")  # a second run adds nothing
    assert TagTable.objects.count() == 1 and ExposureFlag.objects.count() == 2
