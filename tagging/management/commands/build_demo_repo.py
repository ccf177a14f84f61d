"""Build the demo Butler repository (DemoCam) once, and register it as a Butler repo record."""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tagging.repo_locations import check_repo_location
from tagging.services import demo_repo_register, repo_mirror_sync


class Command(BaseCommand):
    help = "Build the DemoCam demo Butler repo (skipped if it exists) and register it under a label."

    def add_arguments(self, parser):
        parser.add_argument("--root", default=str(settings.VAR_DIR / "butler" / "demo"), help="Repository directory.")
        parser.add_argument("--label", default="demo", help="Label of the ButlerRepo record.")
        parser.add_argument("--nights", default="20251121,20251122,20251123", help="Comma-separated day_obs values.")
        parser.add_argument("--science-per-night", type=int, default=12)
        parser.add_argument("--detectors", type=int, default=9)

    def handle(self, *args, root: str, label: str, nights: str, science_per_night: int, detectors: int, **options):
        from lsst_adapter.demo import build_demo_repo

        path = Path(root).absolute()
        try:  # before anything is written or read there
            check_repo_location(str(path))
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        if (path / "butler.yaml").exists():
            self.stdout.write(f"Demo Butler repo already exists at {path}.")
        else:
            try:
                night_list = tuple(int(n) for n in nights.split(",") if n.strip())
            except ValueError as exc:
                raise CommandError(f"--nights must be day_obs integers like 20251121: {exc}") from exc
            started = time.monotonic()
            summary = build_demo_repo(path, nights=night_list, science_per_night=science_per_night, detectors=detectors)
            self.stdout.write(
                self.style.SUCCESS(
                    f"Built the demo Butler repo at {path} in {time.monotonic() - started:.1f} s: "
                    f"{summary.exposures} exposures ({summary.science_exposures} science) × {summary.detectors} detectors, "
                    f"{summary.raws} raws in DemoCam/raw/all."
                )
            )
        repo = demo_repo_register(root=str(path), label=label)
        if repo.mirror_synced is None:
            counts = repo_mirror_sync(repo=repo)
            self.stdout.write(
                f"Read {counts['exposures']} exposures and {counts['detectors']} detectors from its registry."
            )
