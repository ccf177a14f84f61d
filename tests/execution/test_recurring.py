"""Recurring campaigns: schedules kept in django-celery-beat, runs that clone and launch a template.

No BPS runs here: ``group_run.delay`` is replaced by a recorder.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django_celery_beat.models import PeriodicTask

from campaigns import recurring, services
from campaigns.models import Campaign, Group, RecurringCampaign
from campaigns.tasks import recurring_run
from tests.conftest import definition

pytestmark = pytest.mark.django_db

PIPELINE = str(settings.BASE_DIR / "pipelines" / "drp.yaml")
SCIENCE = "exposure.observation_type = 'science' AND detector IN (0, 1)"
AT = datetime(2026, 3, 2, 12, 0, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def sent(monkeypatch, settings, tmp_path) -> list[int]:
    from campaigns.tasks import group_run

    settings.CM_SUBMIT_ROOT = tmp_path / "submit"
    ids: list[int] = []
    monkeypatch.setattr(group_run, "delay", lambda group_id: ids.append(group_id))
    return ids


@pytest.fixture
def template(owner, butler_repo) -> Campaign:
    data = definition(name="nightly-template", pipeline=PIPELINE, data_query=SCIENCE, bps={"compute_site": "local"})
    data["steps"] = [{"name": "step1", "pipeline_subset": "step1"}]
    return services.campaign_create(user=owner, data=data)


def test_staff_create_a_schedule_and_beat_gets_a_crontab_periodic_task(owner, template):
    schedule = recurring.recurring_create(
        user=owner, template_id=template.pk, name_prefix="nightly", cron="30 12 * * 1-5", last_nights=2
    )
    task = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
    assert task.task == "campaigns.tasks.recurring_run" and json.loads(task.args) == [schedule.pk] and task.enabled
    cron = task.crontab
    assert (cron.minute, cron.hour, cron.day_of_month, cron.month_of_year, cron.day_of_week) == (
        "30",
        "12",
        "*",
        "*",
        "1-5",
    )
    assert str(cron.timezone) == "UTC"
    assert template.history.filter(action="schedule").exists()
    when = recurring.next_run(schedule, now=AT)
    assert when == datetime(2026, 3, 2, 12, 30, tzinfo=UTC)


@pytest.mark.parametrize("cron", ["* * * *", "61 * * * *", "0 25 * * *", "0 12 * * funday", "", "*/0 * * * *"])
def test_an_invalid_cron_is_a_field_error(owner, template, cron):
    with pytest.raises(ValidationError) as info:
        recurring.recurring_create(user=owner, template_id=template.pk, name_prefix="nightly", cron=cron)
    assert "cron" in info.value.message_dict
    assert (
        not RecurringCampaign.objects.exists() and not PeriodicTask.objects.filter(task__contains="recurring").exists()
    )


def test_the_page_and_the_api_report_an_invalid_cron_on_its_field(client, api, owner, template):
    client.force_login(owner)
    page = client.post(
        "/campaigns/recurring/",
        {"template": template.pk, "name_prefix": "nightly", "cron": "0 12 * *", "last_nights": 3, "enabled": "on"},
    )
    assert page.status_code == 200 and b"Expected 5 fields" in page.content
    response = api(owner).post(
        "/api/v1/recurring-campaigns/", {"template": template.pk, "name_prefix": "nightly", "cron": "99 * * * *"}
    )
    assert response.status_code == 400 and "cron" in response.json()


def test_a_run_twice_in_the_same_minute_makes_one_launched_campaign_of_the_last_nights(
    owner, template, sent, django_capture_on_commit_callbacks
):
    schedule = recurring.recurring_create(
        user=owner, template_id=template.pk, name_prefix="nightly", cron="0 12 * * *", last_nights=1
    )
    with django_capture_on_commit_callbacks(execute=True):
        first = recurring.recurring_run(recurring_id=schedule.pk, now=AT)
        again = recurring.recurring_run(recurring_id=schedule.pk, now=AT.replace(second=59))
    assert first is not None and again is None
    assert list(Campaign.objects.filter(name__startswith="nightly-2").values_list("name", flat=True)) == [
        "nightly-20260302-1200"
    ]
    assert first.status == "running" and first.owner == owner
    # The repo's mirror has nights 20251121 and 20251122: the last one night is 20251122.
    assert first.data_query == f"({SCIENCE}) AND (exposure.day_obs >= 20251122)"
    groups = Group.objects.filter(step__campaign=first)
    assert [g.name for g in groups] == ["night-20251122"]
    assert sorted(sent) == sorted(groups.values_list("pk", flat=True))
    schedule.refresh_from_db()
    assert schedule.last_run == AT.replace(second=0) and schedule.last_campaign == first and schedule.last_error == ""
    entry = template.history.filter(action="schedule", changes__has_key="recurring run").get()
    assert entry.changes["recurring run"] == [None, "nightly-20260302-1200"] and entry.actor == owner
    # The next minute is another run.
    later = recurring.recurring_run(recurring_id=schedule.pk, now=AT.replace(minute=1))
    assert later is not None and later.name == "nightly-20260302-1201"


def test_the_task_runs_the_schedule_and_two_nights_select_both(owner, template, monkeypatch):
    schedule = recurring.recurring_create(
        user=owner, template_id=template.pk, name_prefix="weekly", cron="0 12 * * 1", last_nights=14
    )
    assert recurring_run(schedule.pk).startswith("weekly-")
    assert recurring_run(schedule.pk) in ("nothing to do", f"weekly-{datetime.now(UTC):%Y%m%d-%H%M}")
    made = Campaign.objects.filter(name__startswith="weekly-2").order_by("created").first()
    assert made.data_query.endswith("(exposure.day_obs >= 20251121)")
    assert {g.name for g in Group.objects.filter(step__campaign=made)} == {"night-20251121", "night-20251122"}


def test_disable_enable_and_delete_follow_the_periodic_task(owner, template):
    schedule = recurring.recurring_create(user=owner, template_id=template.pk, name_prefix="nightly", cron="0 12 * * *")
    recurring.recurring_update(user=owner, recurring_id=schedule.pk, enabled=False)
    assert PeriodicTask.objects.get(pk=schedule.periodic_task_id).enabled is False
    assert recurring.recurring_run(recurring_id=schedule.pk, now=AT) is None  # a disabled schedule makes nothing
    assert recurring.next_run(RecurringCampaign.objects.get(pk=schedule.pk)) is None
    recurring.recurring_update(user=owner, recurring_id=schedule.pk, enabled=True, cron="15 3 * * *")
    task = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
    assert task.enabled and (task.crontab.minute, task.crontab.hour) == ("15", "3")
    recurring.recurring_delete(user=owner, recurring_id=schedule.pk)
    assert not PeriodicTask.objects.filter(pk=schedule.periodic_task_id).exists()
    assert not RecurringCampaign.objects.exists()


def test_staff_manage_schedules_from_the_page(client, owner, template):
    client.force_login(owner)
    detail = client.get(f"/campaigns/{template.pk}/")
    assert b'id="schedule-campaign"' in detail.content
    page = client.get(f"/campaigns/recurring/?template={template.pk}")
    assert page.status_code == 200 and b'id="new-schedule"' in page.content
    created = client.post(
        "/campaigns/recurring/",
        {"template": template.pk, "name_prefix": "nightly", "cron": "0 12 * * *", "last_nights": 3, "enabled": "on"},
    )
    assert created.status_code == 302
    schedule = RecurringCampaign.objects.get()
    listing = client.get("/campaigns/recurring/").content.decode()
    assert "nightly" in listing and "0 12 * * *" in listing and "last 3 nights" in listing and "never" in listing
    edit = client.post(
        f"/campaigns/recurring/{schedule.pk}/", {"name_prefix": "nightly", "cron": "5 6 * * *", "last_nights": 7}
    )
    assert edit.status_code == 302
    schedule.refresh_from_db()
    assert (schedule.cron, schedule.last_nights, schedule.enabled) == ("5 6 * * *", 7, False)
    assert client.post(f"/campaigns/recurring/{schedule.pk}/enable/").status_code == 302
    assert PeriodicTask.objects.get(pk=schedule.periodic_task_id).enabled
    assert client.post(f"/campaigns/recurring/{schedule.pk}/delete/").status_code == 302
    assert not RecurringCampaign.objects.exists()


def test_a_science_user_sees_schedules_but_cannot_change_them(client, api, owner, science_user, template):
    schedule = recurring.recurring_create(user=owner, template_id=template.pk, name_prefix="nightly", cron="0 12 * * *")
    client.force_login(science_user)
    page = client.get("/campaigns/recurring/")
    assert page.status_code == 200 and b"nightly" in page.content and b'id="new-schedule"' not in page.content
    assert b'id="schedule-campaign"' not in client.get(f"/campaigns/{template.pk}/").content
    data = {"template": template.pk, "name_prefix": "mine", "cron": "0 1 * * *", "last_nights": 3}
    assert client.post("/campaigns/recurring/", data).status_code == 403
    assert client.post(f"/campaigns/recurring/{schedule.pk}/disable/").status_code == 403
    assert client.post(f"/campaigns/recurring/{schedule.pk}/", data).status_code == 403
    assert api(science_user).get("/api/v1/recurring-campaigns/").json()[0]["name_prefix"] == "nightly"
    assert api(science_user).post("/api/v1/recurring-campaigns/", data).status_code == 403
    assert api(science_user).patch(f"/api/v1/recurring-campaigns/{schedule.pk}/", {"enabled": False}).status_code == 403
    assert api(science_user).delete(f"/api/v1/recurring-campaigns/{schedule.pk}/").status_code == 403
    assert RecurringCampaign.objects.get().enabled and PeriodicTask.objects.get(pk=schedule.periodic_task_id).enabled


def test_staff_without_rights_on_the_template_cannot_schedule_or_change_it(api, client, owner, other_staff, template):
    with pytest.raises(PermissionDenied):
        recurring.recurring_create(user=other_staff, template_id=template.pk, name_prefix="x", cron="0 1 * * *")
    schedule = recurring.recurring_create(user=owner, template_id=template.pk, name_prefix="nightly", cron="0 12 * * *")
    client_api = api(other_staff)
    data = {"template": template.pk, "name_prefix": "mine", "cron": "0 1 * * *"}
    assert client_api.post("/api/v1/recurring-campaigns/", data).status_code == 403
    assert client_api.patch(f"/api/v1/recurring-campaigns/{schedule.pk}/", {"cron": "1 1 * * *"}).status_code == 403
    assert client_api.delete(f"/api/v1/recurring-campaigns/{schedule.pk}/").status_code == 403
    client.force_login(other_staff)
    assert client.post(f"/campaigns/recurring/{schedule.pk}/delete/").status_code == 403
    # On the page the template is simply not offered.
    page = client.post("/campaigns/recurring/", {**data, "last_nights": 3})
    assert page.status_code == 200 and b"Select a valid choice" in page.content
    assert RecurringCampaign.objects.count() == 1


def test_a_private_templates_schedule_is_invisible_to_others(api, client, owner, other_staff, template):
    services.campaign_update(
        user=owner, campaign_id=template.pk, version=template.version, data={"visibility": "private"}
    )
    schedule = recurring.recurring_create(user=owner, template_id=template.pk, name_prefix="secret", cron="0 12 * * *")
    assert api(other_staff).get("/api/v1/recurring-campaigns/").json() == []
    assert api(other_staff).get(f"/api/v1/recurring-campaigns/{schedule.pk}/").status_code == 404
    assert api(other_staff).delete(f"/api/v1/recurring-campaigns/{schedule.pk}/").status_code == 404
    client.force_login(other_staff)
    assert b"secret" not in client.get("/campaigns/recurring/").content
    assert client.get(f"/campaigns/recurring/{schedule.pk}/").status_code == 404
    assert client.post(f"/campaigns/recurring/{schedule.pk}/disable/").status_code == 404
    with pytest.raises(Http404):
        recurring.access_recurring(other_staff, schedule.pk)


def test_the_api_creates_updates_and_deletes_schedules(api, owner, template):
    client = api(owner)
    created = client.post(
        "/api/v1/recurring-campaigns/",
        {"template": template.pk, "name_prefix": "nightly", "cron": "0 12 * * *", "last_nights": 5},
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["template_name"] == "nightly-template" and body["next_run"] and body["periodic_task"]
    pk = body["id"]
    patched = client.patch(f"/api/v1/recurring-campaigns/{pk}/", {"enabled": False}, format="json")
    assert patched.status_code == 200 and patched.json()["enabled"] is False and patched.json()["next_run"] is None
    assert not PeriodicTask.objects.get(name=body["periodic_task"]).enabled
    assert client.patch(f"/api/v1/recurring-campaigns/{pk}/", {"bogus": 1}, format="json").status_code == 400
    assert client.delete(f"/api/v1/recurring-campaigns/{pk}/").status_code == 204
    assert not PeriodicTask.objects.filter(name=body["periodic_task"]).exists()


def test_a_run_whose_owner_lost_the_template_records_the_error(owner, other_staff, template):
    schedule = recurring.recurring_create(user=owner, template_id=template.pk, name_prefix="nightly", cron="0 12 * * *")
    services.campaign_update(
        user=owner, campaign_id=template.pk, version=template.version, data={"owner": other_staff.username}
    )
    assert recurring.recurring_run(recurring_id=schedule.pk, now=AT) is None
    schedule.refresh_from_db()
    assert "may no longer change" in schedule.last_error and schedule.last_campaign is None


# Beat's scheduler closes "old" connections, which ends the test's transaction: this one commits for real.
@pytest.mark.django_db(transaction=True)
def test_the_database_scheduler_keeps_the_static_entries_and_adds_schedules(owner, template):
    from django_celery_beat.schedulers import DatabaseScheduler

    from config.celery import app

    recurring.recurring_create(user=owner, template_id=template.pk, name_prefix="nightly", cron="* * * * *")
    assert app.conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"
    # (Beat loads only crontab entries due around the current hour: an every-minute schedule always is.)
    scheduler = DatabaseScheduler(app=app)
    names = set(scheduler.schedule)
    assert {"worker-heartbeat", "poll-running-groups", "reconcile-groups"} <= names
    assert any(name.startswith("recurring-campaign-") for name in names)
