"""Recompute the dashboards' rollups of the metric values (all campaigns, or the ones named)."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from metrics import rollups


class Command(BaseCommand):
    help = "Recompute the metric dashboards' rollups from the metric values (PostgreSQL)."

    def add_arguments(self, parser):
        parser.add_argument("--campaign", type=int, action="append", help="campaign id (repeatable); default all")

    def handle(self, *args, **options):
        started = time.perf_counter()
        done = rollups.rebuild(options["campaign"])
        self.stdout.write(
            f"Recomputed the rollups of {done} (campaign, metric)s in {time.perf_counter() - started:.1f} s."
        )
