"""Writes for DataID sets: upload (file, records, query), versions, set algebra, sharing, TAGGED collections."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Max, Sum
from django.utils import timezone

from core.errors import InputError
from core.names import name_unavailable
from core.roles import is_staff_member
from core.sharing import share_object

from ..dataids import storage
from ..dataids.fastcsv import check_csv_fast
from ..dataids.normalize import CheckResult, DataIdChecker, TooManyRows
from ..dataids.readers import ReadError, guess_format, read_astropy, read_csv, read_json
from ..models import (
    DATA_ID_COLUMNS,
    ButlerRepo,
    DataIdRow,
    DataIdSet,
    DataIdSetVersion,
    SetVisibility,
    SourceKind,
    TagStatus,
    label_validator,
)

DataIdUploadError = InputError


@dataclass
class UploadSource:
    """Where the data IDs of a new version come from: a file, records sent by a client, or a Butler query."""

    kind: str  # "file", "records" or "query"
    filename: str = ""
    format: str | None = None
    stream: IO[bytes] | None = None
    path: str | None = None  # a file on disk, for the columnar formats astropy reads whole
    size: int | None = None
    records: list[dict[str, Any]] | None = None
    query: str = ""
    dimensions: list[str] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


class _HashingRaw(io.RawIOBase):
    """Reads through to a binary stream while computing its sha256 and size (restarted by a seek to 0)."""

    def __init__(self, stream: IO[bytes]):
        self._stream = stream
        self.digest = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._stream.read(len(buffer))
        self.digest.update(data)
        self.size += len(data)
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        if offset == 0 and whence == 0:
            self.digest = hashlib.sha256()
            self.size = 0
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()


def _require_staff(user) -> None:
    if not is_staff_member(user):
        raise PermissionDenied("Only staff members can create or change DataID sets.")


def _validate_meta(name: str, reason: str) -> None:
    errors: dict[str, list[str]] = {}
    if not name:
        errors["name"] = ["This field is required."]
    else:
        try:
            label_validator(name)
        except ValidationError as exc:
            errors["name"] = list(exc.messages)
        if len(name) > 100:
            errors.setdefault("name", []).append("At most 100 characters.")
    if not (reason or "").strip():
        errors["reason"] = ["Say why this set exists."]
    if errors:
        raise ValidationError(errors)


def _rows_from(source: UploadSource, checker: DataIdChecker):
    """Runs the checker over the source; returns (CheckResult, provenance dict)."""
    if source.kind == "file":
        fmt = guess_format(source.filename, source.format)
        limit = settings.CM_DATAID_UPLOAD_MAX_BYTES
        if source.size is not None and source.size > limit:
            message = (
                f"{source.filename} is {source.size:,} bytes; DataID uploads may be at most {limit:,} bytes "
                "(CM_DATAID_UPLOAD_MAX_BYTES)."
            )
            raise InputError(message, [{"where": "file", "key": "", "message": message}], 1, field="file")
        if source.size == 0:
            message = f"{source.filename} is empty."
            raise InputError(message, [{"where": "file", "key": "", "message": message}], 1, field="file")
        if fmt in ("json", "csv"):
            assert source.stream is not None
            raw = _HashingRaw(source.stream)
            reader = io.BufferedReader(raw, 1 << 16)
            result = None
            if fmt == "csv":
                # Primary-key columns, all valid: checked in bulk. Anything else (or any problem): rewind
                # (which restarts the digest) and check row by row, which says where each problem is.
                result = check_csv_fast(reader, checker)
                if result is None:
                    reader.seek(0)
            if result is None:
                if fmt == "json":
                    metadata, rows = read_json(reader)
                    source.metadata.update(metadata)
                else:
                    rows = read_csv(reader)
                result = checker.run(rows)
            # Read what is left so the digest covers the whole file even if the checker stopped early.
            while reader.read(1 << 20):
                pass
            digest, size = raw.digest.hexdigest(), raw.size
        else:
            assert source.path is not None
            hasher = hashlib.sha256()
            with open(source.path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    hasher.update(block)
            size = source.size or 0
            result = checker.run(read_astropy(source.path, fmt, max_rows=checker.max_rows))
            digest = hasher.hexdigest()
        provenance_meta = {k: v for k, v in source.metadata.items() if isinstance(v, str | int | float | bool)}
        return result, {
            **({"metadata": provenance_meta} if provenance_meta else {}),
            "kind": SourceKind.FILE,
            "filename": source.filename,
            "format": fmt,
            "sha256": digest,
            "size": size,
        }
    if source.kind == "records":
        records = source.records or []
        rows = (
            (f"index {i}", dict(r) if isinstance(r, dict) else {"__error__": "a data ID must be a mapping"})
            for i, r in enumerate(records)
        )
        return checker.run(rows), {
            "kind": SourceKind.RECORDS,
            "format": source.format or "records",
            "count": len(records),
        }
    if source.kind == "query":
        from lsst_adapter.dataids import query_data_ids
        from lsst_adapter.registry import RepoError

        if not source.query.strip():
            raise InputError("Give a Butler 'where' expression to run.", field="query")
        if not source.dimensions:
            raise InputError("Say which dimensions the query returns (e.g. exposure, detector).", field="dimensions")
        from lsst_adapter import check_where_syntax

        problem = check_where_syntax(source.query)
        if problem is not None:
            raise InputError(f"Not a valid Butler 'where' expression: {problem.message}", field="query")
        try:
            ids = list(
                query_data_ids(
                    checker.uri,
                    source.dimensions,
                    source.query,
                    default_instrument=checker.repo.default_instrument or None,
                )
            )
        except RepoError as exc:
            raise InputError(str(exc), field="query") from exc
        except ValueError as exc:
            raise InputError(str(exc), field="dimensions") from exc
        rows = ((f"result {i + 1}", row) for i, row in enumerate(ids))
        return checker.run(rows), {
            "kind": SourceKind.QUERY,
            "query": source.query,
            "dimensions": list(source.dimensions),
        }
    raise ValueError(f"unknown source kind {source.kind!r}")


def _quota_left(user) -> int:
    used = DataIdSetVersion.objects.filter(created_by=user).aggregate(n=Sum("count"))["n"] or 0
    return max(settings.CM_DATAID_QUOTA - used, 0)


def _quota_check(user, adding: int) -> None:
    quota = settings.CM_DATAID_QUOTA
    # Counted by who stored the data IDs, so adding versions to someone else's shared set counts too.
    used = DataIdSetVersion.objects.filter(created_by=user).aggregate(n=Sum("count"))["n"] or 0
    if used + adding > quota:
        raise InputError(
            f"This would store {adding:,} more data IDs, but you already store {used:,} and your quota is {quota:,}. "
            "Delete old versions or ask an administrator for a larger quota (CM_DATAID_QUOTA).",
            field="quota",
        )


def _columns(dimensions: list[str]) -> list[str]:
    """Column names for SQL built here: only ever the fixed DATA_ID_COLUMNS, never user text."""
    unknown = [d for d in dimensions if d not in DATA_ID_COLUMNS]
    if unknown:
        raise ValueError(f"not a data-ID column: {unknown}")
    return list(dimensions)


def _store_rows(version: DataIdSetVersion, result: CheckResult) -> None:
    rows = result.columns if result.columns is not None else storage.columns_from_tuples(result.dimensions, result.rows)
    storage.store(version.pk, result.dimensions, rows)


def _next_version(dataid_set: DataIdSet) -> int:
    return (dataid_set.versions.aggregate(n=Max("number"))["n"] or 0) + 1


@transaction.atomic
def dataidset_create(
    *,
    user,
    repo_label: str,
    name: str,
    reason: str,
    source: UploadSource,
    description: str = "",
    visibility: str | None = None,
    drop_invalid: bool = False,
    comment: str = "",
) -> DataIdSetVersion:
    """Check every data ID of ``source`` against the repo and store them as a new set (or a new version of
    the user's set of that name). Strict by default: one invalid data ID and nothing is stored."""
    _require_staff(user)
    repo = ButlerRepo.objects.filter(label=repo_label).first()
    if repo is None:
        raise ValidationError({"repo": f"Unknown Butler repo {repo_label!r}."})
    _validate_meta(name, reason)
    if visibility is not None and visibility not in SetVisibility.values:
        raise ValidationError({"visibility": f"{visibility!r} is not one of {', '.join(SetVisibility.values)}."})
    existing = DataIdSet.objects.select_for_update().filter(repo=repo, name=name).first()
    if existing is not None and not DataIdSet.objects.restrict(user, "change").filter(pk=existing.pk).exists():
        # Worded the same whether or not the user may see that set (core.names).
        raise ValidationError(
            {
                "name": name_unavailable(
                    name,
                    scope=repo.label,
                    hint="Uploading to the name of a set you may edit makes a new version of it.",
                )
            }
        )
    # A file is read as a stream: stop it as soon as it holds more than the quota leaves (records sent in a
    # request are already in memory, bounded by the request size, and counted exactly below).
    quota_left = _quota_left(user) if source.kind == "file" else None
    checker = DataIdChecker(repo, dimensions=source.dimensions, drop_invalid=drop_invalid, max_rows=quota_left)
    try:
        result, provenance = _rows_from(source, checker)
    except ReadError as exc:
        raise InputError(str(exc), [{"where": exc.where, "key": "", "message": exc.reason}], 1) from exc
    except TooManyRows as exc:
        quota = settings.CM_DATAID_QUOTA
        message = (
            f"This upload holds more than {exc.count:,} data IDs: you already store {quota - exc.count:,} and your "
            f"quota is {quota:,}; nothing was stored. Delete old versions or ask an administrator for a larger "
            "quota (CM_DATAID_QUOTA)."
        )
        raise InputError(message, [{"where": exc.where, "key": "", "message": message}], 1, field="quota") from exc
    if checker.required is None or (result.error_total and not drop_invalid):
        raise InputError(
            f"{result.error_total:,} problem{'s' if result.error_total != 1 else ''} in {result.rows_read:,} data IDs; nothing was stored.",
            [p.as_dict() for p in result.errors],
            result.error_total,
        )
    if not result.count:
        raise InputError(
            "No valid data ID is left to store; nothing was stored.",
            [p.as_dict() for p in result.errors],
            result.error_total,
        )
    if existing is not None:
        latest = existing.versions.order_by("-number").first()
        if latest is not None and latest.dimensions != result.dimensions:
            raise InputError(
                f"Set {name!r} holds data IDs of ({', '.join(latest.dimensions)}); this upload has ({', '.join(result.dimensions)}). "
                "Use another name for a set of other dimensions.",
                field="dimensions",
            )
    _quota_check(user, result.count)
    if existing is None:
        dataid_set = DataIdSet.objects.create(
            name=name,
            repo=repo,
            owner=user,
            reason=reason.strip(),
            description=description.strip(),
            visibility=visibility or SetVisibility.PRIVATE,
        )
    else:
        # A new version keeps the set's visibility unless the uploader says otherwise.
        dataid_set = existing
        DataIdSet.objects.filter(pk=existing.pk).update(
            reason=reason.strip(),
            description=description.strip() or existing.description,
            visibility=visibility or existing.visibility,
            updated=timezone.now(),
        )
    version = DataIdSetVersion.objects.create(
        dataid_set=dataid_set,
        number=_next_version(dataid_set),
        dimensions=result.dimensions,
        count=result.count,
        duplicates_removed=result.duplicates,
        dropped_count=result.rows_invalid,
        dropped_report=[p.as_dict() for p in result.errors] if drop_invalid else [],
        source_kind=provenance.pop("kind"),
        source=provenance,
        comment=comment.strip(),
        created_by=user,
    )
    _store_rows(version, result)
    return version


_ALGEBRA_SQL = {"union": "UNION", "intersection": "INTERSECT", "difference": "EXCEPT"}


@transaction.atomic
def dataidset_algebra(
    *,
    user,
    operation: str,
    parent_version_ids: list[int],
    name: str,
    reason: str,
    description: str = "",
    visibility: str = SetVisibility.PRIVATE,
) -> DataIdSetVersion:
    """Union, intersection or difference (first minus the others) of set versions with the same dimensions
    in the same repo, as a new set whose provenance names its parents."""
    _require_staff(user)
    if operation not in _ALGEBRA_SQL:
        raise ValidationError({"operation": f"Use one of: {', '.join(_ALGEBRA_SQL)}."})
    if len(parent_version_ids) < 2:
        raise ValidationError({"parents": "Give at least two sets."})
    _validate_meta(name, reason)
    visible = DataIdSet.objects.restrict(user, "view")
    parents = list(
        DataIdSetVersion.objects.select_related("dataid_set__repo").filter(
            pk__in=parent_version_ids, dataid_set__in=visible
        )
    )
    by_id = {p.pk: p for p in parents}
    missing = [pid for pid in parent_version_ids if pid not in by_id]
    if missing:
        raise ValidationError({"parents": f"No DataID set version {missing[0]} that you may see."})
    ordered = [by_id[pid] for pid in parent_version_ids]
    first = ordered[0]
    for other in ordered[1:]:
        if other.dataid_set.repo_id != first.dataid_set.repo_id:
            raise ValidationError({"parents": "All sets must be in the same Butler repo."})
        if other.dimensions != first.dimensions:
            raise ValidationError(
                {
                    "parents": f"{other.dataid_set.name} has dimensions ({', '.join(other.dimensions)}), "
                    f"{first.dataid_set.name} has ({', '.join(first.dimensions)}): they must be the same."
                }
            )
    repo = first.dataid_set.repo
    if DataIdSet.objects.filter(repo=repo, name=name).exists():
        raise ValidationError({"name": name_unavailable(name, scope=repo.label)})
    dims = _columns(list(first.dimensions))
    cols = ", ".join(dims)
    table = DataIdRow._meta.db_table  # the view: one row per data ID
    selects = f" {_ALGEBRA_SQL[operation]} ".join(f"SELECT {cols} FROM {table} WHERE version_id = %s" for _ in ordered)  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {cols} FROM ({selects}) AS combined ORDER BY {cols}", [p.pk for p in ordered])  # noqa: S608
        result = cursor.fetchall()
    count = len(result)
    if count == 0:
        raise InputError(f"The {operation} is empty; no set was stored.", field="parents")
    _quota_check(user, count)
    dataid_set = DataIdSet.objects.create(
        name=name, repo=repo, owner=user, reason=reason.strip(), description=description.strip(), visibility=visibility
    )
    version = DataIdSetVersion.objects.create(
        dataid_set=dataid_set,
        number=1,
        dimensions=dims,
        count=count,
        source_kind=SourceKind.ALGEBRA,
        source={
            "operation": operation,
            "parents": [{"set": p.dataid_set.name, "version": p.number, "version_id": p.pk} for p in ordered],
        },
        created_by=user,
    )
    storage.store(version.pk, dims, storage.columns_from_tuples(dims, result))
    return version


@transaction.atomic
def dataidset_share(
    *,
    user,
    set_id: int,
    username: str | None = None,
    group: str | None = None,
    permission: str = "view",
    grant: bool = True,
) -> DataIdSet:
    """Share (or stop sharing) a set with one user or one group."""
    from ..selectors import access_dataidset

    dataid_set = access_dataidset(user, set_id, "change")
    share_object(dataid_set, username=username, group=group, permission=permission, grant=grant)
    return dataid_set


def default_tag_collection(user, version: DataIdSetVersion) -> str:
    return f"u/{user.username}/dataids/{version.dataid_set.name}/v{version.number}"


@transaction.atomic
def dataidset_tag_start(
    *, user, version_id: int, dataset_type: str, input_collections: list[str], collection: str = ""
) -> DataIdSetVersion:
    """Queue the resolution of a version into a TAGGED collection (a Celery task does the work)."""
    _require_staff(user)
    version = (
        DataIdSetVersion.objects.select_related("dataid_set")
        .filter(pk=version_id, dataid_set__in=DataIdSet.objects.restrict(user, "view"))
        .first()
    )
    if version is None:
        from django.http import Http404

        raise Http404("No such DataID set version.")
    dataset_type = (dataset_type or "").strip()
    inputs = [c.strip() for c in input_collections if c and c.strip()]
    errors = {}
    if not dataset_type:
        errors["dataset_type"] = ["Name the dataset type to find, e.g. raw."]
    if not inputs:
        errors["input_collections"] = ["Name at least one collection to search."]
    if errors:
        raise ValidationError(errors)
    collection = (collection or "").strip() or default_tag_collection(user, version)
    claimed = (
        DataIdSetVersion.objects.filter(pk=version.pk)
        .exclude(tag_status__in=[TagStatus.PENDING, TagStatus.RUNNING])
        .update(
            tag_status=TagStatus.PENDING,
            tag_collection=collection,
            tag_dataset_type=dataset_type,
            tag_input_collections=inputs,
            tag_error="",
            tag_updated=timezone.now(),
        )
    )
    if not claimed:
        raise ValidationError({"tag": "A resolution of this version is already queued or running."})
    from ..tasks import dataidset_tag

    transaction.on_commit(lambda: dataidset_tag.delay(version.pk))
    version.refresh_from_db()
    return version


def dataidset_tag_run(*, version_id: int) -> DataIdSetVersion | None:
    """The work of the Celery task: claim the version, resolve its data IDs in one Butler query and
    associate the datasets. Safe to run twice: only a pending version is claimed."""
    from lsst_adapter.dataids import tag_datasets
    from lsst_adapter.registry import RepoError

    claimed = DataIdSetVersion.objects.filter(pk=version_id, tag_status=TagStatus.PENDING).update(
        tag_status=TagStatus.RUNNING, tag_updated=timezone.now()
    )
    if not claimed:
        return None
    version = DataIdSetVersion.objects.select_related("dataid_set__repo").get(pk=version_id)
    dims = list(version.dimensions)
    columns = storage.read_columns(version.pk, dims)
    try:
        result = tag_datasets(
            version.dataid_set.repo.config_uri,
            dimensions=dims,
            columns=columns,
            dataset_type=version.tag_dataset_type,
            input_collections=version.tag_input_collections,
            collection=version.tag_collection,
        )
    except RepoError as exc:
        DataIdSetVersion.objects.filter(pk=version_id).update(
            tag_status=TagStatus.FAILED, tag_error=str(exc), tag_updated=timezone.now()
        )
        version.refresh_from_db()
        return version
    DataIdSetVersion.objects.filter(pk=version_id).update(
        tag_status=TagStatus.DONE,
        tag_found=result.found,
        tag_missing_count=result.missing_count,
        tag_missing=result.missing,
        tag_error="",
        tag_updated=timezone.now(),
    )
    version.refresh_from_db()
    return version
