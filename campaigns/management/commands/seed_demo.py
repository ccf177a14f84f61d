"""Create the demo people, the demo Butler repo record and a handful of realistic campaigns.

Safe to run again: people and campaigns that exist are left as they are.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from campaigns import services
from campaigns.choices import CampaignStatus, GroupStatus
from campaigns.execution.services import campaign_launch
from campaigns.models import Campaign
from core.roles import ensure_role_groups, set_role
from tagging.models import ButlerRepo
from tagging.services import demo_repo_register

PEOPLE = [
    # username, role, full name
    ("admin", "superuser", "Site Administrator"),
    ("alice", "staff", "Alice Processing"),
    ("bob", "staff", "Bob Pipelines"),
    ("carol", "science", "Carol Science"),
]

DRP_QUERY = "instrument = 'DemoCam' AND exposure.observation_type = 'science'"

CAMPAIGNS = [
    {
        # Launched for real: make run's worker runs it through BPS + Parsl on the demo repo.
        "owner": "alice",
        "status": CampaignStatus.READY,
        "launch": True,
        "data": {
            "name": "w48-minidrp",
            "campaign_type": "mini-drp",
            "reason": "Check the new PSF model on one week of data before it goes into the next DRP.",
            "description": "Mini-DRP over the **week 48** DemoCam nights, in the shape of Rubin's DRP.\n\n"
            "- step1: per-detector ISR + PSF (one group per night)\n"
            "- step2: per-visit summary (needs approval)\n"
            "- step3: per patch and band, a coadd-like summary of the visits that overlap the patch "
            "(one group per tract of `demo_sky_v1`)\n"
            "- step4: per-tract summary (one group per tract)\n\nCompare with `w46-minidrp` afterwards.",
            "visibility": "public",
            "butler_repo": "demo",
            "pipeline": "demo/pipelines/drp.yaml",
            "input_collections": ["DemoCam/raw/all"],
            "data_query": "instrument = 'DemoCam' AND exposure.observation_type = 'science' AND band IN ('g', 'r')",
            "output_collection": "DemoCam/runs/w48-minidrp",
            "bps": {"compute_site": "local_threads", "wms": "parsl", "request_memory": 2048, "request_cpus": 1},
            "scope": "Nights 2025-11-21 to 2025-11-23, bands g and r.",
            "links": [{"label": "JIRA DM-48123", "url": "https://jira.example.org/browse/DM-48123"}],
            "collaborators": ["bob"],
            "steps": [
                {"name": "step1", "pipeline_subset": "step1"},
                {"name": "step2", "pipeline_subset": "step2", "depends_on": ["step1"], "requires_approval": True},
                {
                    "name": "step3",
                    "pipeline_subset": "step3",
                    "depends_on": ["step2"],
                    "split": {"by": "tract", "skymap": "demo_sky_v1"},
                },
                {
                    "name": "step4",
                    "pipeline_subset": "step4",
                    "depends_on": ["step3"],
                    "split": {"by": "tract", "skymap": "demo_sky_v1"},
                },
            ],
        },
    },
    {
        "owner": "bob",
        "status": CampaignStatus.SUCCEEDED,
        "groups": {"flats": [("g", GroupStatus.SUCCEEDED), ("r", GroupStatus.SUCCEEDED), ("i", GroupStatus.ACCEPTED)]},
        "data": {
            "name": "calib-2025-11-flats",
            "campaign_type": "calibration",
            "reason": "Monthly combined flats for November 2025.",
            "description": "Combined flats per band from the dome-screen sequences.",
            "visibility": "staff",
            "butler_repo": "demo",
            "pipeline": "demo/pipelines/cpFlat.yaml",
            "input_collections": ["DemoCam/raw/all", "DemoCam/calib"],
            "data_query": "instrument = 'DemoCam' AND exposure.observation_type = 'flat'",
            "output_collection": "DemoCam/calib/flats-2025-11",
            "bps": {"compute_site": "local_threads", "wms": "parsl"},
            "scope": "All flat exposures of November 2025.",
            "steps": [{"name": "flats", "pipeline_subset": "cpFlat"}],
        },
    },
    {
        "owner": "alice",
        "status": CampaignStatus.DRAFT,
        "data": {
            "name": "templates-2025b",
            "campaign_type": "template",
            "reason": "Coadd templates for difference imaging in the 2025B fields.",
            "visibility": "public",
            "butler_repo": "demo",
            "pipeline": "demo/pipelines/templates.yaml",
            "input_collections": ["DemoCam/raw/all"],
            "data_query": DRP_QUERY + " AND band IN ('g', 'r', 'i')",
            "output_collection": "DemoCam/templates/2025b",
            "bps": {"compute_site": "local_threads", "wms": "parsl", "request_memory": 4096},
            "scope": "Best-seeing 30% of science visits per field.",
            "links": [{"label": "DMTN-999", "url": "https://dmtn-999.example.org/"}],
            "steps": [
                {"name": "warps", "pipeline_subset": "step1"},
                {"name": "coadds", "pipeline_subset": "step2", "depends_on": ["warps"]},
            ],
        },
    },
    {
        "owner": "bob",
        "status": CampaignStatus.FAILED,
        "groups": {"step1": [("part-1", GroupStatus.SUCCEEDED), ("part-2", GroupStatus.FAILED)]},
        "data": {
            "name": "dev-bob-psf-tweak",
            "campaign_type": "developer",
            "reason": "Try a larger PSF kernel on the nights with poor seeing.",
            "visibility": "private",
            "butler_repo": "demo",
            "pipeline": "demo/pipelines/drp.yaml#step1",
            "input_collections": ["DemoCam/raw/all"],
            "data_query": "instrument = 'DemoCam' AND day_obs = 20251122",
            "output_collection": "u/bob/psf-tweak",
            "bps": {"compute_site": "local_threads", "wms": "parsl", "extra": {"numberOfRetries": 1}},
            "steps": [{"name": "step1", "pipeline_subset": "step1"}],
        },
    },
    {
        "owner": "alice",
        "status": CampaignStatus.READY,
        "data": {
            "name": "biweekly-2025-48",
            "campaign_type": "biweekly",
            "reason": "Bi-weekly regression run of the weekly stack on the reference nights.",
            "visibility": "public",
            "butler_repo": "demo",
            "pipeline": "demo/pipelines/drp.yaml",
            "input_collections": ["DemoCam/raw/all"],
            "data_query": DRP_QUERY,
            "output_collection": "DemoCam/runs/biweekly/2025-48",
            "bps": {"compute_site": "local_threads", "wms": "parsl"},
            "steps": [
                {"name": "step1", "pipeline_subset": "step1"},
                {"name": "step2", "pipeline_subset": "step2", "depends_on": ["step1"]},
            ],
        },
    },
    {
        "owner": "bob",
        "status": CampaignStatus.DRAFT,
        "data": {
            "name": "commissioning-dome-light",
            "campaign_type": "commissioning",
            "reason": "Quantify the scattered light from the dome lamp reported on 2025-11-21.",
            "visibility": "public",
            "butler_repo": "demo",
            "pipeline": "demo/pipelines/drp.yaml#step1",
            "input_collections": ["DemoCam/raw/all"],
            "data_query": "instrument = 'DemoCam' AND day_obs = 20251121 AND exposure.seq_num > 150",
            "scope": "The 20 exposures after the dome light incident.",
            "links": [{"label": "Exposure log OBS-123", "url": "https://jira.example.org/browse/OBS-123"}],
            "steps": [{"name": "step1", "pipeline_subset": "step1"}],
        },
    },
]

# The walk from draft to each final state, as a person would do it.
STATUS_PATH = {
    CampaignStatus.DRAFT: [],
    CampaignStatus.READY: [CampaignStatus.READY],
    CampaignStatus.RUNNING: [CampaignStatus.READY, CampaignStatus.RUNNING],
    CampaignStatus.SUCCEEDED: [CampaignStatus.READY, CampaignStatus.RUNNING, CampaignStatus.SUCCEEDED],
    CampaignStatus.FAILED: [CampaignStatus.READY, CampaignStatus.RUNNING, CampaignStatus.FAILED],
}


def seed_knowledge(users) -> str:
    """What people know about the demo data: a tag table, flags and a selection frozen into a DataID set, all
    through the real services (rows checked against the registry). Only once the repo's mirror is read."""
    from tagging.models import Exposure, TagTable
    from tagging.selection.services import selection_freeze
    from tagging.services.flags import flag_add
    from tagging.services.tagtables import tag_rows_upsert, tagtable_create

    repo = ButlerRepo.objects.filter(label="demo").first()
    if repo is None or repo.mirror_synced is None or TagTable.objects.filter(repo=repo).exists():
        return ""
    alice, bob = users["alice"], users["bob"]
    science = list(Exposure.objects.filter(repo=repo, observation_type="science").order_by("exposure_id"))
    if len(science) < 6:
        return ""
    with transaction.atomic():
        table = tagtable_create(
            user=alice,
            repo_label="demo",
            name="night-log-seeing",
            key_dimensions=["instrument", "exposure"],
            polarity="select",
            purpose="Seeing and dome state from the night log; select good-seeing exposures for PSF work.",
            visibility="public",
            columns=[
                {"name": "seeing", "type": "float", "unit": "arcsec", "required": True},
                {"name": "dome_open", "type": "bool"},
                {"name": "quality", "type": "enum", "enum_values": ["good", "ok", "wonky"]},
            ],
        )
        rows = []
        for i, exposure in enumerate(science):
            seeing = round(0.55 + 0.09 * ((i * 7) % 11), 2)
            quality = "good" if seeing < 0.9 else "ok" if seeing < 1.2 else "wonky"
            rows.append({"obs_id": exposure.obs_id, "seeing": seeing, "dome_open": i % 9 != 4, "quality": quality})
        tag_rows_upsert(user=alice, table_id=table.pk, rows=rows, reason="Night log transcribed at set-up.")
        flag_add(
            user=bob,
            repo_label="demo",
            exposure=science[3].exposure_id,
            message_text="Dome light left on during the exposure.",
            exposure_flag="junk",
            tags=["dome", "stray-light"],
        )
        flag_add(
            user=bob,
            repo_label="demo",
            exposure=science[5].exposure_id,
            message_text="Tracking hiccup; PSF may be elongated.",
            exposure_flag="questionable",
            tags=["tracking"],
        )
        version = selection_freeze(
            user=alice,
            recipe={
                "repo": "demo",
                "dimensions": ["exposure", "detector"],
                "terms": [
                    {"where": "exposure.observation_type = 'science'"},
                    {"tag_table": "night-log-seeing", "condition": "seeing < 1.0 AND dome_open"},
                    {"mode": "exclude", "flags": ["junk"]},
                ],
            },
            name="good-seeing",
            reason="Science exposures with seeing under 1 arcsec, dome open, not flagged junk.",
        )
    return (
        f"Demo knowledge: tag table night-log-seeing ({len(rows)} rows), 2 flags, "
        f"DataID set good-seeing ({version.count} data IDs, frozen from a selection)."
    )


def demo_password(username: str) -> str:
    return os.environ.get("CM_DEMO_PASSWORD") or f"{username}-demo-2025"


class Command(BaseCommand):
    help = "Create demo people, the demo Butler repo record and demo campaigns (idempotent)."

    def handle(self, *args, **options):
        ensure_role_groups()
        User = get_user_model()
        users = {}
        lines = []
        for username, role, full_name in PEOPLE:
            first, last = full_name.split(" ", 1)
            user = User.objects.filter(username=username).first()
            if user is None:
                if role == "superuser":
                    user = User.objects.create_superuser(username, f"{username}@example.org", demo_password(username))
                else:
                    user = User.objects.create_user(username, f"{username}@example.org", demo_password(username))
                    set_role(user, role)
                user.first_name, user.last_name = first, last
                user.save(update_fields=["first_name", "last_name"])
            users[username] = user
            lines.append(f"  {username:<6} {role:<10} password: {demo_password(username)}")

        if not ButlerRepo.objects.filter(label="demo").exists():
            # The record only; `manage.py build_demo_repo` builds the repository itself (make run does both).
            try:
                demo_repo_register(root=str(settings.VAR_DIR / "butler" / "demo"))
            except ValidationError as exc:  # var/butler is not an allowed root (CM_BUTLER_REPO_ROOTS)
                raise CommandError(f"The demo repo cannot be registered: {' '.join(exc.messages)}") from None

        created = 0
        for spec in CAMPAIGNS:
            if Campaign.objects.filter(name=spec["data"]["name"]).exists():
                continue
            with transaction.atomic():
                owner = users[spec["owner"]]
                campaign = services.campaign_create(user=owner, data=spec["data"], comment="Demo campaign.")
                for step_name, groups in spec.get("groups", {}).items():
                    made = services.step_groups_define(
                        user=owner,
                        campaign_id=campaign.pk,
                        step_name=step_name,
                        groups=[{"name": name, "data_query": ""} for name, _ in groups],
                    )
                    for group, (_, state) in zip(made, groups, strict=True):
                        if state != GroupStatus.WAITING:
                            services.group_set_status(
                                user=owner, group_id=group.pk, status=state, comment="Demo state."
                            )
                for status in STATUS_PATH[spec["status"]]:
                    services.campaign_set_status(user=owner, campaign_id=campaign.pk, status=status)
                if spec.get("launch"):
                    campaign_launch(user=owner, campaign_id=campaign.pk, comment="Demo: launched at set-up.")
                created += 1

        knowledge = seed_knowledge(users)
        if knowledge:
            self.stdout.write(knowledge)
        self.stdout.write(self.style.SUCCESS(f"Demo data ready ({created} campaign(s) created)."))
        self.stdout.write("Demo people (log in at http://127.0.0.1:8000/):")
        for line in lines:
            self.stdout.write(line)
