"""Reads of exposure flags and the bad-data register, already permission-filtered, and the two
exclusion selectors the selection builder uses (``junk_exposures``, ``bad_data_exposures``)."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404

from core.filters import without_blanks

from .filtersets_flags import BadDataFilterSet, FlagFilterSet
from .models import BadDataEvent, BadDataRecord, BadDataStatus, ButlerRepo, Exposure, ExposureFlag


def flag_list(*, user, filters: dict[str, Any] | None = None) -> QuerySet[ExposureFlag]:
    """Flags ``user`` may see, filtered like the exposure log (valid ones unless ``is_valid`` says otherwise)."""
    filterset = FlagFilterSet(
        without_blanks(filters) or {}, queryset=ExposureFlag.objects.restrict(user, "view").select_related("repo")
    )
    if not filterset.is_valid():
        raise ValidationError(filterset.errors.get_json_data())
    return filterset.qs


def access_flag(user, pk: Any, action: str = "view") -> ExposureFlag:
    try:
        key = uuid.UUID(str(pk))
    except ValueError:
        raise Http404("No such flag.") from None
    flag = ExposureFlag.objects.restrict(user, "view").select_related("repo", "parent").filter(pk=key).first()
    if flag is None:
        raise Http404("No such flag.")
    if action != "view" and not ExposureFlag.objects.restrict(user, action).filter(pk=key).exists():
        raise PermissionDenied("Only staff members can change exposure flags.")
    return flag


def require_flag_writer(user) -> None:
    """403 for those who may read flags but not write them (the API checks before parsing a body)."""
    if not _may_change(user):
        raise PermissionDenied("Only staff members can write exposure flags.")


def require_bad_data_writer(user) -> None:
    if not _may_change(user):
        raise PermissionDenied("Only staff members can change the bad-data register.")


def _may_change(user) -> bool:
    from core.roles import is_staff_member

    return is_staff_member(user)


def flag_history(*, flag: ExposureFlag) -> list[ExposureFlag]:
    """Every message of ``flag``'s line of edits, oldest first: its ancestors, itself and its descendants."""
    chain = [flag]
    current = flag
    seen = {flag.pk}
    while current.parent_id and current.parent_id not in seen:
        parent = ExposureFlag.objects.filter(pk=current.parent_id).first()
        if parent is None:
            break
        chain.insert(0, parent)
        seen.add(parent.pk)
        current = parent
    frontier = [flag.pk]
    while frontier:
        children = list(ExposureFlag.objects.filter(parent_id__in=frontier).exclude(pk__in=seen))
        seen.update(c.pk for c in children)
        chain.extend(sorted(children, key=lambda c: c.date_added))
        frontier = [c.pk for c in children]
    return chain


def exposure_flags(*, user, exposure: Exposure) -> list[ExposureFlag]:
    """Valid flags of one exposure (matched by instrument and exposure id, whichever repo they were made in)."""
    return list(
        ExposureFlag.objects.restrict(user, "view")
        .filter(instrument=exposure.instrument, exposure=exposure.exposure_id, is_valid=True)
        .order_by("-date_added", "id")
    )


def junk_exposures(repo: ButlerRepo, flags: tuple[str, ...] = ("junk",)) -> QuerySet:
    """Ids of the repo's exposures with a valid flag of one of ``flags``: a ``values('exposure_id')``
    queryset, usable as ``exposure_id__in=`` (one SQL subquery)."""
    flagged = ExposureFlag.objects.filter(
        is_valid=True,
        exposure_flag__in=list(flags),
        instrument=OuterRef("instrument"),
        exposure=OuterRef("exposure_id"),
    )
    return Exposure.objects.filter(repo=repo).filter(Exists(flagged)).values("exposure_id")


# --- bad-data register ---------------------------------------------------------------------------------------

OPEN_STATUSES = (BadDataStatus.OPEN, BadDataStatus.EXPLAINED)


def bad_data_list(*, user, filters: dict[str, Any] | None = None) -> QuerySet[BadDataRecord]:
    filterset = BadDataFilterSet(
        without_blanks(filters) or {},
        queryset=BadDataRecord.objects.restrict(user, "view").select_related("repo", "created_by"),
    )
    if not filterset.is_valid():
        raise ValidationError(filterset.errors.get_json_data())
    return filterset.qs.order_by("-updated", "-pk")


def access_bad_data(user, pk: Any) -> BadDataRecord:
    try:
        key = int(pk)
    except (TypeError, ValueError):
        raise Http404("No such bad-data record.") from None
    record = (
        BadDataRecord.objects.restrict(user, "view")
        .select_related("repo", "created_by", "quantum_error")
        .filter(pk=key)
        .first()
    )
    if record is None:
        raise Http404("No such bad-data record.")
    return record


def bad_data_events(*, record: BadDataRecord) -> QuerySet[BadDataEvent]:
    return record.events.select_related("user").order_by("-at", "-pk")


def bad_data_exposures(repo: ButlerRepo, statuses: tuple[str, ...] = OPEN_STATUSES) -> QuerySet:
    """Ids of the repo's exposures with a bad-data record in one of ``statuses`` (by exposure, or by the
    one-to-one visit): a ``values('exposure_id')`` queryset, usable as ``exposure_id__in=`` (one SQL subquery).

    A record of one detector marks the whole exposure here; ``bad_data_detectors`` gives the finer pairs.
    """
    records = BadDataRecord.objects.filter(repo=repo, status__in=list(statuses))
    return (
        Exposure.objects.filter(repo=repo)
        .filter(
            Q(exposure_id__in=records.filter(exposure__isnull=False).values("exposure"))
            | Q(visit_id__in=records.filter(visit__isnull=False).values("visit"))
        )
        .values("exposure_id")
    )


def bad_data_detectors(repo: ButlerRepo, statuses: tuple[str, ...] = OPEN_STATUSES) -> QuerySet:
    """(exposure or visit, detector) of records that name a detector, for exclusions finer than an exposure."""
    return (
        BadDataRecord.objects.filter(repo=repo, status__in=list(statuses), detector__isnull=False)
        .values_list("exposure", "visit", "detector")
        .distinct()
    )


def exposure_bad_data(*, user, exposure: Exposure) -> list[BadDataRecord]:
    """Open and explained bad-data records of one exposure (its own, its detectors', its visit's)."""
    condition = Q(exposure=exposure.exposure_id)
    if exposure.visit_id is not None:
        condition |= Q(visit=exposure.visit_id)
    return list(
        BadDataRecord.objects.restrict(user, "view")
        .filter(repo_id=exposure.repo_id, status__in=list(OPEN_STATUSES))
        .filter(condition)
        .order_by("-updated", "-pk")
    )
