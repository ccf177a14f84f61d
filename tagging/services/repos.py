"""Writes for Butler repo records and their mirror tables."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from ..models import ButlerRepo, Detector, Exposure
from ..repo_locations import check_repo_location


@transaction.atomic
def butler_repo_upsert(
    *, label: str, config_uri: str, description: str = "", default_instrument: str = ""
) -> ButlerRepo:
    repo = ButlerRepo(
        label=label, config_uri=config_uri, description=description, default_instrument=default_instrument
    )
    existing = ButlerRepo.objects.filter(label=label).first()
    if existing is not None:
        repo.pk, repo.created, repo.mirror_synced = existing.pk, existing.created, existing.mirror_synced
    repo.full_clean(validate_unique=existing is None)
    repo.save()
    return repo


DEMO_REPO_DESCRIPTION = "Demo repository of the DemoCam instrument (built by `manage.py build_demo_repo`)."


def demo_repo_register(*, root: str, label: str = "demo") -> ButlerRepo:
    """The ButlerRepo record of the demo repository (created or updated)."""
    return butler_repo_upsert(
        label=label, config_uri=str(root), description=DEMO_REPO_DESCRIPTION, default_instrument="DemoCam"
    )


@transaction.atomic
def repo_mirror_sync(*, repo: ButlerRepo) -> dict[str, int]:
    """Copy the repo's detector and exposure records from its registry into the mirror tables.

    Upserts by primary key and removes what the registry no longer has, so
    running it twice is harmless. When records were added or removed, ``tagging.signals.mirror_changed``
    is sent after the commit. Returns counts.
    """
    from lsst_adapter.registry import read_detectors, read_exposures

    # Checked again before reading: the roots may have been narrowed since the repo was registered.
    check_repo_location(repo.config_uri, field="config_uri")
    detectors = read_detectors(repo.config_uri)
    exposures = read_exposures(repo.config_uri)
    before = (Exposure.objects.filter(repo=repo).count(), Detector.objects.filter(repo=repo).count())
    det_fields = ["full_name", "raft", "purpose"]
    Detector.objects.bulk_create(
        [Detector(repo=repo, **d) for d in detectors],
        update_conflicts=True,
        unique_fields=["repo", "instrument", "detector_id"],
        update_fields=det_fields,
        batch_size=2000,
    )
    exp_fields = [f for f in exposures[0] if f not in ("instrument", "exposure_id")] if exposures else []
    Exposure.objects.bulk_create(
        [Exposure(repo=repo, **e) for e in exposures],
        update_conflicts=bool(exp_fields),
        unique_fields=["repo", "instrument", "exposure_id"],
        update_fields=exp_fields or None,
        batch_size=2000,
    )
    keep_exposures = {(e["instrument"], e["exposure_id"]) for e in exposures}
    stale = [
        pk
        for pk, inst, eid in Exposure.objects.filter(repo=repo).values_list("pk", "instrument", "exposure_id")
        if (inst, eid) not in keep_exposures
    ]
    Exposure.objects.filter(pk__in=stale).delete()
    keep_detectors = {(d["instrument"], d["detector_id"]) for d in detectors}
    stale_det = [
        pk
        for pk, inst, did in Detector.objects.filter(repo=repo).values_list("pk", "instrument", "detector_id")
        if (inst, did) not in keep_detectors
    ]
    Detector.objects.filter(pk__in=stale_det).delete()
    ButlerRepo.objects.filter(pk=repo.pk).update(mirror_synced=timezone.now())
    after = (Exposure.objects.filter(repo=repo).count(), Detector.objects.filter(repo=repo).count())
    if stale or stale_det or after != before:  # records added or removed: tell those who read the mirror
        from ..signals import mirror_changed

        transaction.on_commit(lambda: mirror_changed.send(sender=ButlerRepo, repo=repo))
    return {"detectors": len(detectors), "exposures": len(exposures), "removed": len(stale) + len(stale_det)}
