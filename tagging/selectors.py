"""Reads of the tagging app."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.http import Http404

from core.filters import without_blanks

from .filtersets import ExposureFilterSet
from .models import (
    ButlerRepo,
    DataIdSet,
    DataIdSetGroupObjectPermission,
    DataIdSetUserObjectPermission,
    DataIdSetVersion,
    Detector,
    Exposure,
)


def butler_repo_list() -> QuerySet[ButlerRepo]:
    """Every logged-in user may see the configured repos."""
    return ButlerRepo.objects.annotate(exposure_count=Count("exposures")).order_by("label")


def butler_repo_get(*, label: str) -> ButlerRepo:
    repo = ButlerRepo.objects.filter(label=label).first()
    if repo is None:
        raise Http404(f"No Butler repo labelled {label!r}.")
    return repo


def exposure_list(*, repo: ButlerRepo, filters: dict[str, Any] | None = None) -> QuerySet[Exposure]:
    filterset = ExposureFilterSet(
        without_blanks(filters), queryset=Exposure.objects.filter(repo=repo).select_related("repo")
    )
    if not filterset.is_valid():
        raise ValidationError(filterset.errors.get_json_data())
    return filterset.qs.order_by("-day_obs", "-seq_num")


def exposure_get(*, repo: ButlerRepo, exposure_id: int, instrument: str | None = None) -> Exposure:
    qs = Exposure.objects.filter(repo=repo, exposure_id=exposure_id).select_related("repo")
    if instrument:
        qs = qs.filter(instrument=instrument)
    exposure = qs.first()
    if exposure is None:
        raise Http404(f"No exposure {exposure_id} in repo {repo.label}.")
    return exposure


def exposure_facets(*, repo: ButlerRepo) -> dict[str, list]:
    """Values to offer in the exposure filters."""
    qs = Exposure.objects.filter(repo=repo)
    return {
        "nights": list(qs.values_list("day_obs", flat=True).distinct().order_by("day_obs")),
        "bands": list(qs.exclude(band="").values_list("band", flat=True).distinct().order_by("band")),
        "observation_types": list(
            qs.values_list("observation_type", flat=True).distinct().order_by("observation_type")
        ),
        "targets": list(
            qs.exclude(target_name="").values_list("target_name", flat=True).distinct().order_by("target_name")
        ),
    }


def detector_list(*, repo: ButlerRepo) -> QuerySet[Detector]:
    return Detector.objects.filter(repo=repo).order_by("instrument", "detector_id")


def dataidset_list(*, user, repo_label: str | None = None, q: str = "") -> Any:
    qs = DataIdSet.objects.restrict(user, "view").select_related("repo", "owner")
    if repo_label:
        qs = qs.filter(repo__label=repo_label)
    if q.strip():
        qs = qs.filter(
            Q(name__icontains=q.strip()) | Q(reason__icontains=q.strip()) | Q(description__icontains=q.strip())
        )
    latest = DataIdSetVersion.objects.filter(dataid_set=OuterRef("pk")).order_by("-number")
    return qs.annotate(
        latest_number=Subquery(latest.values("number")[:1]),
        latest_count=Subquery(latest.values("count")[:1]),
        latest_dimensions=Subquery(latest.values("dimensions")[:1]),
    ).order_by("-updated", "name")


def access_dataidset(user, pk: int | str, action: str = "view") -> DataIdSet:
    """The set, if ``user`` may ``action`` it: 404 if they may not see it, 403 if they may only look."""
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise Http404("No such DataID set.") from None
    dataid_set = DataIdSet.objects.restrict(user, action).select_related("repo", "owner").filter(pk=pk).first()
    if dataid_set is None:
        if action != "view" and DataIdSet.objects.restrict(user, "view").filter(pk=pk).exists():
            raise PermissionDenied("You may view this DataID set but not change it.")
        raise Http404("No such DataID set.")
    return dataid_set


def dataidset_by_name(*, user, repo_label: str, name: str) -> DataIdSet:
    found = (
        DataIdSet.objects.restrict(user, "view")
        .filter(repo__label=repo_label, name=name)
        .values_list("pk", flat=True)
        .first()
    )
    if found is None:
        raise Http404(f"No DataID set named {name!r} in {repo_label} that you may see.")
    return access_dataidset(user, found)


def dataidset_version(*, dataid_set: DataIdSet, number: int | str | None = None) -> DataIdSetVersion:
    versions = dataid_set.versions.all()
    if number not in (None, "", "latest") and not str(number).strip().isdigit():
        raise Http404(f"{dataid_set.name} has no version {number}.")
    version = (
        versions.order_by("-number").first()
        if number in (None, "", "latest")
        else versions.filter(number=int(number)).first()
    )
    if version is None:
        raise Http404(f"{dataid_set.name} has no version {number}.")
    return version


def dataidset_rows(*, version: DataIdSetVersion) -> Iterator[tuple]:
    """The data IDs of a version in storage order, primary keys only, streamed from the database."""
    from .dataids import storage

    return storage.iter_rows(version.pk, list(version.dimensions))


def dataidset_sharing(*, dataid_set: DataIdSet) -> dict[str, list[tuple[str, str]]]:
    users = DataIdSetUserObjectPermission.objects.filter(content_object=dataid_set).select_related("user", "permission")
    groups = DataIdSetGroupObjectPermission.objects.filter(content_object=dataid_set).select_related(
        "group", "permission"
    )
    return {
        "users": sorted({(p.user.username, p.permission.codename.split("_")[0]) for p in users}),
        "groups": sorted({(p.group.name, p.permission.codename.split("_")[0]) for p in groups}),
    }
