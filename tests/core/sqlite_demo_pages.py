"""Run by tests/core/test_sqlite_demo.py inside ``manage.py shell`` on the SQLite demo database that
``make run`` builds (migrate, build_demo_repo, seed_demo): ingest a few metric values through the ingest
service, evaluate a quality gate and a metric-conditioned input, then GET the key pages as alice with
Django's test client. Prints one ``OK <what>`` line per check and ``ALL OK`` at the end; raises on a failure.
"""

from __future__ import annotations

import json

from django.db import connection
from django.test import Client
from django.test.utils import setup_test_environment

from campaigns.coverage import campaign_coverage_record
from campaigns.models import Campaign, Group, GroupExposure, Step, Submission
from core.sqlite_functions import percentile
from metrics.conditions import statistic
from metrics.models import GateResult, MetricValue
from metrics.reobserve import reobservation_rows
from metrics.services import _evaluate_gates, _freeze_input, metric_values_ingest
from tagging.models import DataIdSet, Exposure, TagTable

assert connection.vendor == "sqlite", connection.vendor
setup_test_environment()  # the test client's response.context, and 'testserver' allowed


def ok(what: str) -> None:
    print("OK", what, flush=True)


def expect(response, what: str, *needles: str, status: int = 200) -> str:
    body = response.content.decode()
    assert response.status_code == status, f"{what}: HTTP {response.status_code}\n{body[:3000]}"
    for needle in needles:
        assert needle in body, f"{what}: {needle!r} not in the page\n{body[:3000]}"
    ok(what)
    return body


from django.contrib.auth import get_user_model  # noqa: E402

User = get_user_model()
alice = User.objects.get(username="alice")
admin = User.objects.get(username="admin")

# --- metric values: two campaigns, as if their step1 groups had run (no BPS run in this smoke test) ---------
science = list(Exposure.objects.filter(observation_type="science").order_by("exposure_id")[:6])
assert science, "the demo repo has science exposures"
campaigns = []
for name, step, offset in (("w48-minidrp", "step1", 0.0), ("calib-2025-11-flats", "flats", 0.08)):
    campaign = Campaign.objects.get(name=name)  # both visible to alice
    group = Group.objects.filter(step__campaign=campaign, step__name=step).order_by("pk").first()
    run = f"DemoCam/runs/{name}/smoke"
    Submission.objects.get_or_create(
        group=group, number=99, defaults={"run_collection": run, "state": "succeeded", "kind": "submit"}
    )
    records = [
        {
            "instrument": e.instrument,
            "exposure": e.exposure_id,
            "detector": detector,
            "run": run,
            "psfFwhm": round(0.7 + 0.02 * i + 0.001 * detector + offset, 6),
        }
        for i, e in enumerate(science)
        for detector in range(9)
    ]
    report = metric_values_ingest(user=admin, campaign_id=campaign.pk, records=records, units={"psfFwhm": "arcsec"})
    assert report.read == len(records), report
    campaigns.append(campaign)
a, b = campaigns
count = MetricValue.objects.filter(campaign=a, metric__endswith="psfFwhm").count()
assert count == len(science) * 9, count
metric = MetricValue.objects.filter(campaign=a).values_list("metric", flat=True).first()
ok(f"ingest: {count} values of {metric}")

# --- quality gate and metric-conditioned input (percentile_cont on SQLite) ---------------------------------
step1 = Step.objects.get(campaign=a, name="step1")
step2 = Step.objects.get(campaign=a, name="step2")
Step.objects.filter(pk=step1.pk).update(
    quality_gates=[{"metric": "psfFwhm", "statistic": "median", "op": "<", "threshold": 1.0}]
)
step1.refresh_from_db()
values = list(MetricValue.objects.filter(step=step1, value__isnull=False).values_list("value", flat=True))
assert _evaluate_gates(step1) is True
gate = GateResult.objects.get(step=step1)
assert gate.count == len(values) and abs(gate.measured - statistic("median", values)) < 1e-9, gate.measured
ok(f"quality gate: median {gate.measured:.4f} over {gate.count} values")
cond = {"step": "step1", "metric": "psfFwhm", "statistic": "p50", "op": "<", "threshold": 0.75, "per": "exposure"}
Step.objects.filter(pk=step2.pk).update(metric_input=cond)
step2.refresh_from_db()
freeze = _freeze_input(step1, step2)
per_exposure = {}
for e, v in MetricValue.objects.filter(step=step1, value__isnull=False).values_list("exposure", "value"):
    per_exposure.setdefault(e, []).append(v)
expected = sum(1 for vs in per_exposure.values() if percentile(0.5, vs) < 0.75)
assert (freeze.selected, freeze.rejected) == (expected, len(per_exposure) - expected), (freeze.selected, expected)
ok(f"metric input: {freeze.selected} exposures selected, {freeze.rejected} rejected")
# The frozen input changed step2's data-ID tables: their coverage is recorded again, with the table's rows
# joined as JSON (SQLite's path); only the exposures that passed, among those the campaign's query selects.
counts = campaign_coverage_record(campaign_id=a.pk)
assert counts == {"recorded": Group.objects.filter(step=step2).count(), "unknown": 0}, counts
passed = {e for e, vs in per_exposure.items() if percentile(0.5, vs) < 0.75}
in_query = set(
    Exposure.objects.filter(exposure_id__in=passed, band__in=["g", "r"]).values_list("exposure_id", flat=True)
)
step2_covered = set(GroupExposure.objects.filter(group__step=step2).values_list("exposure", flat=True))
assert step2_covered == in_query, (step2_covered, in_query)
ok(f"coverage after the frozen input: step2 covers {len(step2_covered)} exposures")
rows = list(
    reobservation_rows(
        campaign=a,
        request={"metric": "psfFwhm", "op": ">", "threshold": 0.75, "statistic": "p90", "band": "",
                 "day_obs_min": None, "day_obs_max": None},
    )
)  # fmt: skip
assert rows and all(r["measured"] > 0.75 for r in rows), rows
ok(f"re-observation rows: {len(rows)}")

# --- pages, as alice -----------------------------------------------------------------------------------------
client = Client()
client.force_login(alice)
expect(client.get("/campaigns/"), "campaigns list", "w48-minidrp")
expect(client.get(f"/campaigns/{a.pk}/"), "campaign page", a.name)
expect(client.get("/data/selections/"), "selection builder")
good = DataIdSet.objects.get(name="good-seeing")
expect(client.get(f"/data/sets/{good.pk}/"), "good-seeing set page", "good-seeing")
table = TagTable.objects.get(name="night-log-seeing")
expect(client.get(f"/data/tag-tables/{table.pk}/"), "tag table page", "night-log-seeing")
exposure = science[0]
expect(
    client.get(f"/data/repos/{exposure.repo.label}/exposures/{exposure.exposure_id}/"),
    "exposure page",
    exposure.obs_id,
    a.name,  # the metrics section lists the campaign that measured it
)
unmeasured = (
    GroupExposure.objects.filter(group__step=step1)
    .exclude(exposure__in=[e.exposure_id for e in science])
    .values_list("exposure", flat=True)
    .first()
)
assert unmeasured is not None, "step1 of w48 covers exposures beyond the six measured ones"
expect(
    client.get(f"/data/repos/{exposure.repo.label}/exposures/{unmeasured}/"),
    "exposure page of a group with no metric values",
    f'data-campaign="{a.name}"',
    'data-group="step1/',
    "No metric values for this exposure in this campaign.",
)
explorer = client.get("/metrics/", {"campaign": [a.pk, b.pk], "metric": metric})
expect(explorer, "metrics explorer", metric)
n = len(science) * 9
assert (explorer.context["value_count"], explorer.context["exposure_total"]) == (2 * n, 2 * len(science)), (
    explorer.context["value_count"],
    explorer.context["exposure_total"],
)
compare = client.get("/metrics/compare/", {"a": a.pk, "b": b.pk, "metric": metric})
expect(compare, "compare page", a.name, b.name)
comparison = compare.context["comparison"]
assert (comparison.paired, comparison.only_a, comparison.only_b, compare.context["drawn"]) == (n, 0, 0, n)
assert abs(comparison.largest[0].diff - 0.08) < 1e-6 and sum(comparison.differences.counts) == n
overview = client.get(f"/metrics/campaigns/{a.pk}/")
expect(overview, "campaign overview", a.name)
assert overview.context["overview"].metric_count == n, overview.context["overview"].metric_count
export = client.get(
    f"/metrics/reobserve/{a.pk}/", {"metric": "psfFwhm", "op": ">", "threshold": "0.75", "format": "csv"}
)
expect(export, "re-observation export", str(rows[0]["exposure"]))

# --- the selection API ---------------------------------------------------------------------------------------
recipe = {
    "repo": exposure.repo.label,
    "dimensions": ["exposure", "detector"],
    "terms": [
        {"where": "exposure.observation_type = 'science'"},
        {"tag_table": "night-log-seeing", "condition": "seeing < 1.0 AND dome_open"},
        {"mode": "exclude", "flags": ["junk"]},
    ],
}
response = client.post("/api/v1/selections/count", data=json.dumps({"recipe": recipe}), content_type="application/json")
body = expect(response, "POST /api/v1/selections/count")
answer = json.loads(body)
assert answer["count"] > 0 and answer["start"] >= answer["count"], answer
assert len(answer["terms"]) == 3 and answer["preview"], answer
assert answer["count"] == good.versions.get().count, (answer["count"], good.versions.get().count)  # as frozen
sampled = dict(recipe, sample={"size": 5, "seed": 7, "stratify": {"field": "band"}})
response = client.post("/api/v1/selections/count", data=json.dumps(sampled), content_type="application/json")
assert json.loads(expect(response, "sampled selection count"))["count"] == 5
ok(f"selection count: {answer['start']} -> {answer['count']}")
# A where the mirror cannot answer (the Butler runs it, its ids joined as JSON), and a sample stratified by a
# tag-table column in bins.
butler_recipe = {
    "repo": exposure.repo.label,
    "dimensions": ["exposure"],
    "terms": [{"where": "exposure.observation_type = 'science' AND exposure.dark_time >= 0"}],
    "sample": {
        "fraction": 0.5,
        "seed": 3,
        "stratify": {"tag_table": "night-log-seeing", "column": "seeing", "bins": 2},
    },
}
response = client.post("/api/v1/selections/count", data=json.dumps(butler_recipe), content_type="application/json")
answer = json.loads(expect(response, "Butler-answered, stratified selection count"))
science_count = Exposure.objects.filter(repo=exposure.repo, observation_type="science").count()
assert answer["terms"][0]["engine"] == "butler" and answer["terms"][0]["after"] == science_count, answer["terms"]
assert answer["count"] == round(science_count * 0.5), (answer["count"], science_count)
ok(f"Butler-answered where: {science_count} exposures, sampled {answer['count']}")
version = good.versions.get()
response = client.post(
    "/api/v1/selections/rerun", data=json.dumps({"version_id": version.pk}), content_type="application/json"
)
rerun = json.loads(expect(response, "selection re-run"))
assert rerun["unchanged"] and rerun["current_count"] == rerun["frozen_count"] == version.count, rerun

# A metric term (median over detectors: percentile_cont, SQLite's aggregate, in a HAVING), frozen and re-run.
qa = {
    "repo": exposure.repo.label,
    "dimensions": ["exposure"],
    "terms": [{"metric": "psfFwhm", "campaign": a.name, "statistic": "median", "op": "<", "threshold": 0.75}],
}
response = client.post("/api/v1/selections/count", data=json.dumps({"recipe": qa}), content_type="application/json")
answer = json.loads(expect(response, "metric-term selection count"))
assert answer["count"] == sum(1 for vs in per_exposure.values() if percentile(0.5, vs) < 0.75) > 0, answer
response = client.post(
    "/api/v1/selections/freeze",
    data=json.dumps({"recipe": qa, "name": "smoke-sharp", "reason": "smoke test"}),
    content_type="application/json",
)
frozen = json.loads(expect(response, "metric-term selection freeze", status=201))
assert frozen["source"]["recipe"]["terms"][0]["metric"] == metric, frozen["source"]
response = client.post(
    "/api/v1/selections/rerun", data=json.dumps({"version_id": frozen["version_id"]}), content_type="application/json"
)
assert json.loads(expect(response, "metric-term selection re-run"))["unchanged"]
ok(f"metric term: {answer['count']} exposures with median psfFwhm < 0.75")

# --- the loop back: metric > threshold into a DataID set -------------------------------------------------------
response = client.post(
    "/metrics/select/",
    {"campaigns": [a.pk], "campaign": a.pk, "metric": metric, "operator": "gt", "threshold": "0.75",
     "name": "smoke-wide-psf", "reason": "smoke test"},
)  # fmt: skip
assert response.status_code == 302, response.status_code
selected = DataIdSet.objects.get(name="smoke-wide-psf").versions.get()
expected_ids = MetricValue.objects.filter(campaign=a, value__gt=0.75).count()
assert selected.count == expected_ids > 0, (selected.count, expected_ids)
ok(f"threshold selection: {selected.count} data IDs")

# --- the executor's state moves (PostgreSQL writes a transition and its history entry in one statement) ------
from campaigns.choices import GroupStatus  # noqa: E402
from campaigns.execution.state import move_group  # noqa: E402
from campaigns.models import Group  # noqa: E402

ready = Group.objects.filter(step__campaign__name="w48-minidrp", status=GroupStatus.READY).first()
assert ready is not None, "the demo launches w48-minidrp: it has ready groups"
moved = move_group(ready.pk, to=GroupStatus.CANCELLED, frm=[GroupStatus.READY], reason="smoke test cancel")
assert moved is not None and moved.status == GroupStatus.CANCELLED
assert ready.transitions.filter(from_status="ready", to_status="cancelled", reason="smoke test cancel").exists()
assert ready.step.campaign.history.filter(comment="smoke test cancel").exists()
ok("executor state move with its transition and history entry")

# --- what needs a person: a failed group recorded as a worker would, then the inbox, banner and error summary ---
from campaigns.execution.runner import submission_claim, submission_record_prepared, submission_record_result  # noqa: E402
from lsst_adapter.bps import FailedQuantum, GroupProgress, PreparedWorkflow  # noqa: E402

other = Group.objects.filter(step__campaign__name="w48-minidrp", status=GroupStatus.READY).first()
claimed = submission_claim(group_id=other.pk, worker_name="smoke")
assert claimed is not None
assert submission_record_prepared(
    submission_id=claimed.pk,
    prepared=PreparedWorkflow(
        run_name="smoke", submit_dir=claimed.submit_dir, qgraph_file="g.qg", quanta=2, quanta_by_task={"step1": 2},
        jobs=4, wms_service_class="lsst.ctrl.bps.parsl.ParslService", butler_config="", output="", output_run="",
        prepare_seconds=0.0,
    ),
)  # fmt: skip
data_id = {"instrument": "DemoCam", "exposure": 2025112100150, "detector": 3}
submission_record_result(
    submission_id=claimed.pk,
    progress=GroupProgress(
        total=2, succeeded=1, failed=1, state="FAILED", finished=True,
        by_task={"step1": {"total": 2, "succeeded": 1, "failed": 1, "running": 0, "pending": 0, "blocked": 0}},
        failures=[FailedQuantum("step1", data_id, "RuntimeError", "PSF fit diverged after 12 iterations in 'g'")],
    ),
)  # fmt: skip
other.refresh_from_db()
assert other.status == GroupStatus.FAILED, other.status
expect(client.get("/inbox/"), "inbox", f"Group {other.step.name}/{other.name} failed")
inbox = json.loads(expect(client.get("/api/v1/inbox/"), "GET /api/v1/inbox/"))
assert any(i["group_id"] == other.pk and i["can_act"] for i in inbox["items"]), inbox
expect(client.get(f"/campaigns/{a.pk}/"), "campaign page banner", 'id="attention"', "failed groups")
expect(client.get("/campaigns/"), "campaign list column", "1 failed group")
expect(
    client.get(f"/campaigns/{a.pk}/errors/"),
    "error summary (regexp_replace on SQLite)",
    "PSF fit diverged after # iterations in &#x27;…&#x27;",
)
expect(client.get(f"/campaigns/{a.pk}/groups/{other.pk}/"), "group page", 'id="report-1"', "PSF fit diverged")
print("ALL OK", flush=True)
