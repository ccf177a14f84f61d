"""Record which exposures planned groups cover, for groups planned before this was recorded at launch (or
whose task was lost). Safe to run again: groups already recorded for their present selection are skipped."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from campaigns.coverage import campaign_coverage_record, pending_groups
from campaigns.models import Campaign


class Command(BaseCommand):
    help = "Record the exposures each planned group covers (for the exposure page), from the exposure mirror."

    def add_arguments(self, parser):
        parser.add_argument("--campaign", action="append", default=[], help="Campaign name (repeatable); default all.")

    def handle(self, *args, **options):
        names = options["campaign"]
        campaigns = Campaign.objects.order_by("pk")
        if names:
            campaigns = campaigns.filter(name__in=names)
            unknown = set(names) - set(campaigns.values_list("name", flat=True))
            if unknown:
                raise CommandError(f"No campaign named {', '.join(sorted(unknown))}.")
        ids = set(pending_groups().filter(step__campaign__in=campaigns).values_list("step__campaign_id", flat=True))
        for campaign in campaigns.filter(pk__in=ids):
            counts = campaign_coverage_record(campaign_id=campaign.pk)
            self.stdout.write(f"{campaign.name}: {counts['recorded']} group(s) recorded, {counts['unknown']} unknown")
        self.stdout.write(self.style.SUCCESS(f"Coverage recorded for {len(ids)} campaign(s)."))
