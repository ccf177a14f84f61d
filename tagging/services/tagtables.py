"""Writes for tag tables: create and edit a table, change its schema without a migration, upsert and
delete rows (every change kept with who, when, old, new and why), bulk upload, sharing.

Rows are keyed by data IDs checked against the Butler registry with the same checker as DataID sets
(alternate keys accepted: ``obs_id``, ``day_obs`` + ``seq_num``, detector full name, visit name);
values are checked against the declared columns.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.errors import ConflictError, InputError
from core.limits import LimitExceeded, check_int64, upload_max_rows
from core.names import name_unavailable
from core.roles import is_staff_member
from core.sharing import share_object

from ..dataids.normalize import ALIASES, CheckResult, DataIdChecker, Problem, _Pending
from ..dataids.readers import RawRow, ReadError, read_csv, read_json
from ..models import (
    DATA_ID_COLUMNS,
    ButlerRepo,
    ColumnType,
    Polarity,
    RowAction,
    SetVisibility,
    TagColumn,
    TagRow,
    TagRowChange,
    TagTable,
    TagTableEvent,
    label_validator,
)

ERROR_SAMPLE = 50
# Names a column may not take: they name the row's data ID (or an alternate key of it) in files and forms.
RESERVED_NAMES = set(DATA_ID_COLUMNS) | set(ALIASES) | {"group", "visit_system", "key", "reason", "seq_num"}
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


# --- helpers ---------------------------------------------------------------------------------------


def _require_staff(user) -> None:
    if not is_staff_member(user):
        raise PermissionDenied("Only staff members can create or change tag tables.")


def _access(user, table_id: int, *, lock: bool = True) -> TagTable:
    from ..selectors_tagtables import access_tagtable

    table = access_tagtable(user, table_id, "change")
    if lock:
        table = TagTable.objects.select_for_update().select_related("repo").get(pk=table.pk)
    return table


def _event(table: TagTable, user, action: str, *, column=None, detail=None, reason: str = "") -> TagTableEvent:
    return TagTableEvent.objects.create(
        table=table, action=action, column=column, detail=detail or {}, reason=(reason or "").strip(), user=user
    )


def _check_version(table: TagTable, version: int | None) -> None:
    """Optimistic concurrency: an edit based on an older version is refused, naming who changed what."""
    if version is None or int(version) == table.version:
        return
    last = table.events.select_related("user").order_by("-timestamp", "-pk").first()
    who = f"{last.user.username} ({last.action.replace('_', ' ')}, {last.timestamp:%Y-%m-%d %H:%M} UTC)" if last else ""
    raise ConflictError(
        f"{table.name} was changed since you loaded it (you had version {version}, it is now version "
        f"{table.version}){' by ' + who if who else ''}. Reload and apply your change again.",
        current_version=table.version,
        changed_by=last.user.username if last else None,
        change=last.action if last else None,
    )


def _bump(table: TagTable) -> None:
    TagTable.objects.filter(pk=table.pk).update(version=F("version") + 1, updated=timezone.now())
    table.refresh_from_db(fields=["version", "updated"])


def _validate_column_name(name: str, errors: dict[str, list[str]], field_name: str = "name") -> None:
    if not name:
        errors.setdefault(field_name, []).append("A column needs a name.")
        return
    try:
        TagColumn._meta.get_field("name").run_validators(name)
    except ValidationError as exc:
        errors.setdefault(field_name, []).extend(f"{name!r}: {m}" for m in exc.messages)
        return
    if len(name) > 64:
        errors.setdefault(field_name, []).append(f"{name!r}: at most 64 characters.")
    if name.lower() in RESERVED_NAMES:
        errors.setdefault(field_name, []).append(
            f"{name!r} names a data ID key (a dimension or alternate key); choose another column name."
        )


def _clean_enum_values(values: Any) -> list[str]:
    if isinstance(values, str):
        values = [v for v in values.replace("\n", ",").split(",")]
    return [str(v).strip() for v in (values or []) if str(v).strip()]


@dataclass
class ColumnSpec:
    """A declared column as a person gives it (name, type, enum values, unit, description, required)."""

    name: str
    type: str
    enum_values: list[str] = field(default_factory=list)
    unit: str = ""
    description: str = ""
    required: bool = False

    @classmethod
    def of(cls, data: Any) -> ColumnSpec:
        if isinstance(data, ColumnSpec):
            return data
        return cls(
            name=str(data.get("name") or "").strip(),
            type=str(data.get("type") or "").strip(),
            enum_values=_clean_enum_values(data.get("enum_values")),
            unit=str(data.get("unit") or "").strip(),
            description=str(data.get("description") or "").strip(),
            required=bool(data.get("required", False)),
        )


def _validate_spec(spec: ColumnSpec, prefix: str = "") -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    _validate_column_name(spec.name, errors, f"{prefix}name")
    if spec.type not in ColumnType.values:
        errors[f"{prefix}type"] = [f"{spec.type!r} is not a column type; use one of {', '.join(ColumnType.values)}."]
    if spec.type == ColumnType.ENUM:
        if not spec.enum_values:
            errors[f"{prefix}enum_values"] = [f"Enum column {spec.name!r} needs its allowed values."]
        elif len(set(spec.enum_values)) != len(spec.enum_values):
            errors[f"{prefix}enum_values"] = [f"Enum column {spec.name!r} lists a value twice."]
    elif spec.enum_values:
        errors[f"{prefix}enum_values"] = [f"Only enum columns have allowed values ({spec.name!r} is {spec.type})."]
    if len(spec.unit) > 32:
        errors[f"{prefix}unit"] = ["A unit has at most 32 characters."]
    return errors


# --- values against the schema ---------------------------------------------------------------------


def coerce_value(column: TagColumn, raw: Any) -> Any:
    """The JSON value stored for ``raw`` in ``column``, or ValueError saying what is wrong.
    None (or an empty string) means "no value"."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    kind = column.type
    if kind == ColumnType.INT:
        if isinstance(raw, bool):
            raise ValueError(f"{raw!r} is not an integer")
        # Stored values are compared and sorted as 64-bit integers (bigint casts in selections).
        if isinstance(raw, int):
            return check_int64(raw)
        if isinstance(raw, float):
            if raw.is_integer():
                return check_int64(int(raw))
            raise ValueError(f"{raw!r} is not an integer")
        text = str(raw).strip()
        if len(text.lstrip("+-")) > 19 and text.lstrip("+-").isdigit():
            raise ValueError(f"{text[:20]}... ({len(text)} digits) is out of range (a 64-bit integer)")
        try:
            return check_int64(int(text))
        except ValueError as exc:
            if "out of range" in str(exc):
                raise
            raise ValueError(f"{raw!r} is not an integer") from None
    if kind == ColumnType.FLOAT:
        if isinstance(raw, bool):
            raise ValueError(f"{raw!r} is not a number")
        try:
            value = float(raw if isinstance(raw, int | float) else str(raw).strip())
        except OverflowError:
            raise ValueError(f"{str(raw)[:30]} is too large for a 64-bit float") from None
        except (TypeError, ValueError):
            raise ValueError(f"{raw!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"{raw!r} is not a finite number")
        return value
    if kind == ColumnType.BOOL:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"{raw!r} is not a boolean (use true or false)")
    if kind == ColumnType.STRING:
        if isinstance(raw, dict | list | bool):
            raise ValueError(f"{raw!r} is not a string")
        return str(raw).strip()
    if kind == ColumnType.ENUM:
        text = str(raw).strip()
        if text not in column.enum_values:
            raise ValueError(f"{text!r} is not one of {', '.join(column.enum_values)}")
        return text
    if kind == ColumnType.DATETIME:
        text = str(raw).strip()
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an ISO 8601 date and time (e.g. 2025-11-21T03:04:05Z)") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)  # a time without a zone is read as UTC
        return moment.astimezone(UTC).isoformat()
    raise ValueError(f"unknown column type {kind!r}")


def canonical_key(dimensions: list[str], key: tuple) -> str:
    return ",".join(f"{d}={v}" for d, v in zip(dimensions, key, strict=True))


# --- tables -----------------------------------------------------------------------------------------


def _key_dimensions(repo: ButlerRepo, names: Iterable[str]) -> list[str]:
    from lsst_adapter.dataids import DimensionError, required_dimensions
    from lsst_adapter.registry import RepoError

    names = [str(n).strip() for n in names if str(n).strip()]
    if not names:
        raise ValidationError({"key_dimensions": ["Name the dimensions of the row keys, e.g. exposure."]})
    try:
        required = required_dimensions(repo.config_uri, names)
    except DimensionError as exc:
        raise ValidationError({"key_dimensions": [str(exc)]}) from exc
    except RepoError as exc:
        raise ValidationError({"key_dimensions": [f"Cannot read the repo {repo.label}: {exc}"]}) from exc
    unsupported = [d for d in required if d not in DATA_ID_COLUMNS]
    if unsupported:
        raise ValidationError({"key_dimensions": [f"Rows cannot be keyed by {', '.join(unsupported)}."]})
    return required


@transaction.atomic
def tagtable_create(
    *,
    user,
    repo_label: str,
    name: str,
    key_dimensions: list[str],
    columns: list[Any],
    polarity: str = Polarity.NEUTRAL,
    purpose: str = "",
    description: str = "",
    visibility: str = SetVisibility.PRIVATE,
    share_with: list[dict[str, str]] | None = None,
) -> TagTable:
    """A new tag table with its declared columns; ``share_with`` grants view or change to users or groups
    (``{"username": ..., "permission": "view"}`` or ``{"group": ..., "permission": "change"}``)."""
    _require_staff(user)
    errors: dict[str, list[str]] = {}
    repo = ButlerRepo.objects.filter(label=repo_label).first()
    if repo is None:
        errors["repo"] = [f"Unknown Butler repo {repo_label!r}."]
    name = (name or "").strip()
    try:
        label_validator(name)
    except ValidationError as exc:
        errors["name"] = list(exc.messages)
    if len(name) > 100:
        errors.setdefault("name", []).append("At most 100 characters.")
    if polarity not in Polarity.values:
        errors["polarity"] = [f"{polarity!r} is not one of {', '.join(Polarity.values)}."]
    if visibility not in SetVisibility.values:
        errors["visibility"] = [f"{visibility!r} is not one of {', '.join(SetVisibility.values)}."]
    specs = [ColumnSpec.of(c) for c in columns or []]
    seen: set[str] = set()
    for i, spec in enumerate(specs):
        for key, messages in _validate_spec(spec, f"columns[{i}].").items():
            errors.setdefault(key, []).extend(messages)
        if spec.name in seen:
            errors.setdefault(f"columns[{i}].name", []).append(f"Column {spec.name!r} is declared twice.")
        seen.add(spec.name)
    if repo is not None and not errors.get("name") and TagTable.objects.filter(repo=repo, name=name).exists():
        errors["name"] = [name_unavailable(name, scope=repo.label)]  # the same whether it is visible or not
    if errors:
        raise ValidationError(errors)
    assert repo is not None
    dims = _key_dimensions(repo, key_dimensions)
    table = TagTable.objects.create(
        name=name,
        repo=repo,
        owner=user,
        description=(description or "").strip(),
        purpose=(purpose or "").strip(),
        polarity=polarity,
        key_dimensions=dims,
        visibility=visibility,
        next_column_key=len(specs) + 1,
    )
    TagColumn.objects.bulk_create(
        [
            TagColumn(
                table=table,
                key=f"c{i + 1}",
                name=s.name,
                type=s.type,
                enum_values=s.enum_values,
                unit=s.unit,
                description=s.description,
                required=s.required,
                position=i + 1,
            )
            for i, s in enumerate(specs)
        ]
    )
    _event(
        table,
        user,
        "created",
        detail={
            "name": name,
            "key_dimensions": dims,
            "polarity": polarity,
            "visibility": visibility,
            "columns": [{"name": s.name, "type": s.type} for s in specs],
        },
    )
    for grant in share_with or []:
        done = share_object(
            table,
            username=grant.get("username") or None,
            group=grant.get("group") or None,
            permission=grant.get("permission", "view"),
            grant=True,
        )
        _event(table, user, "shared", detail={"what": done})
    return table


_EDITABLE = ("name", "description", "purpose", "polarity", "visibility")


@transaction.atomic
def tagtable_update(*, user, table_id: int, version: int, changes: dict[str, Any], reason: str = "") -> TagTable:
    """Change a table's name, description, purpose, polarity or visibility. ``version`` is the one the
    change was based on: if someone changed the table since, ConflictError says who and what."""
    table = _access(user, table_id)
    _check_version(table, version)
    unknown = [k for k in changes if k not in _EDITABLE]
    if unknown:
        raise ValidationError({unknown[0]: [f"{unknown[0]!r} cannot be changed here."]})
    errors: dict[str, list[str]] = {}
    diff: dict[str, dict[str, Any]] = {}
    for key, value in changes.items():
        value = (value or "").strip() if isinstance(value, str) else value
        if key == "name":
            try:
                label_validator(value)
            except ValidationError as exc:
                errors["name"] = list(exc.messages)
                continue
            if TagTable.objects.filter(repo=table.repo, name=value).exclude(pk=table.pk).exists():
                errors["name"] = [name_unavailable(value, scope=table.repo.label)]
                continue
        if key == "polarity" and value not in Polarity.values:
            errors["polarity"] = [f"{value!r} is not one of {', '.join(Polarity.values)}."]
            continue
        if key == "visibility" and value not in SetVisibility.values:
            errors["visibility"] = [f"{value!r} is not one of {', '.join(SetVisibility.values)}."]
            continue
        if getattr(table, key) != value:
            diff[key] = {"old": getattr(table, key), "new": value}
            setattr(table, key, value)
    if errors:
        raise ValidationError(errors)
    if not diff:
        return table
    table.version += 1
    table.save(update_fields=[*diff, "version", "updated"])
    _event(table, user, "updated", detail=diff, reason=reason)
    return table


@transaction.atomic
def tagtable_share(
    *,
    user,
    table_id: int,
    username: str | None = None,
    group: str | None = None,
    permission: str = "view",
    grant: bool = True,
) -> TagTable:
    """Share (or stop sharing) a table with one user or one group, to view or to change."""
    table = _access(user, table_id)
    done = share_object(table, username=username, group=group, permission=permission, grant=grant)
    _event(table, user, "shared" if grant else "unshared", detail={"what": done})
    return table


# --- columns ----------------------------------------------------------------------------------------


def _column(table: TagTable, column_key: str) -> TagColumn:
    column = table.columns.filter(key=column_key).first() or table.columns.filter(name=column_key).first()
    if column is None:
        raise ValidationError({"column": [f"{table.name} has no column {column_key!r}."]})
    return column


@transaction.atomic
def tag_column_add(*, user, table_id: int, spec: Any, version: int | None = None, reason: str = "") -> TagColumn:
    """Add a column (no database migration: values live by column key). A required column can only
    be added to a table without rows."""
    table = _access(user, table_id)
    _check_version(table, version)
    spec = ColumnSpec.of(spec)
    errors = _validate_spec(spec)
    if not errors.get("name") and table.columns.filter(name=spec.name).exists():
        errors["name"] = [f"{table.name} already has a column {spec.name!r}."]
    if spec.required and table.row_count:
        errors.setdefault("required", []).append(
            f"{table.row_count} rows would have no value: add the column as optional, fill it, then make it required."
        )
    if errors:
        raise ValidationError(errors)
    key = f"c{table.next_column_key}"
    position = (max(table.columns.values_list("position", flat=True), default=0) or 0) + 1
    column = TagColumn.objects.create(
        table=table,
        key=key,
        name=spec.name,
        type=spec.type,
        enum_values=spec.enum_values,
        unit=spec.unit,
        description=spec.description,
        required=spec.required,
        position=position,
    )
    TagTable.objects.filter(pk=table.pk).update(next_column_key=F("next_column_key") + 1)
    _bump(table)
    _event(table, user, "column_added", column=column, detail={"name": spec.name, "type": spec.type}, reason=reason)
    return column


@transaction.atomic
def tag_column_update(
    *, user, table_id: int, column_key: str, changes: dict[str, Any], version: int | None = None, reason: str = ""
) -> TagColumn:
    """Rename a column, change its unit, description or required flag, or add allowed values to an enum.
    Each change is a table event; stored values are untouched (they are kept by the column's key)."""
    table = _access(user, table_id)
    _check_version(table, version)
    column = _column(table, column_key)
    allowed = {"name", "unit", "description", "required", "enum_values"}
    unknown = [k for k in changes if k not in allowed]
    if unknown:
        raise ValidationError(
            {unknown[0]: [f"{unknown[0]!r} of a column cannot be changed (only {', '.join(sorted(allowed))})."]}
        )
    errors: dict[str, list[str]] = {}
    events: list[tuple[str, dict]] = []
    if "name" in changes:
        new = str(changes["name"] or "").strip()
        if new != column.name:
            _validate_column_name(new, errors)
            if not errors and table.columns.filter(name=new).exclude(pk=column.pk).exists():
                errors["name"] = [f"{table.name} already has a column {new!r}."]
            events.append(("column_renamed", {"old": column.name, "new": new}))
            column.name = new
    for attr, action in (("unit", "column_unit_changed"), ("description", "column_description_changed")):
        if attr in changes:
            new = str(changes[attr] or "").strip()
            if attr == "unit" and len(new) > 32:
                errors["unit"] = ["A unit has at most 32 characters."]
            if new != getattr(column, attr):
                events.append((action, {"old": getattr(column, attr), "new": new}))
                setattr(column, attr, new)
    if "required" in changes:
        new_required = bool(changes["required"])
        if new_required and not column.required:
            missing = table.rows.exclude(**{f"values__{column.key}__isnull": False}).count()
            if missing:
                errors["required"] = [f"{missing} rows have no value in {column.name}; fill them first."]
        if new_required != column.required:
            events.append(("column_required_changed", {"old": column.required, "new": new_required}))
            column.required = new_required
    if "enum_values" in changes:
        values = _clean_enum_values(changes["enum_values"])
        if column.type != ColumnType.ENUM:
            errors["enum_values"] = [f"{column.name} is a {column.type} column, not an enum."]
        else:
            removed = [v for v in column.enum_values if v not in values]
            if removed:
                errors["enum_values"] = [
                    f"Allowed values can be added, not removed (missing: {', '.join(removed)}); rows may hold them."
                ]
            elif values != column.enum_values:
                events.append(("column_enum_extended", {"old": column.enum_values, "new": values}))
                column.enum_values = values
    if errors:
        raise ValidationError(errors)
    if not events:
        return column
    column.save()
    _bump(table)
    for action, detail in events:
        _event(table, user, action, column=column, detail=detail, reason=reason)
    return column


@transaction.atomic
def tag_column_retire(
    *, user, table_id: int, column_key: str, retire: bool = True, version: int | None = None, reason: str = ""
) -> TagColumn:
    """Retire a column (hidden from the grid and downloads, no longer written; its values are kept)
    or bring it back."""
    table = _access(user, table_id)
    _check_version(table, version)
    column = _column(table, column_key)
    if retire == (column.retired is not None):
        return column
    column.retired = timezone.now() if retire else None
    if retire:
        column.required = False
    column.save(update_fields=["retired", "required"])
    _bump(table)
    _event(
        table,
        user,
        "column_retired" if retire else "column_unretired",
        column=column,
        detail={"name": column.name},
        reason=reason,
    )
    return column


# --- rows -------------------------------------------------------------------------------------------


@dataclass
class UpsertResult:
    """What a row upsert or upload did."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    dropped: int = 0
    dropped_report: list[dict[str, str]] = field(default_factory=list)
    rows_read: int = 0
    keys: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "dropped": self.dropped,
            "dropped_report": self.dropped_report,
            "rows_read": self.rows_read,
            "keys": self.keys[:1000],
        }


class _RowChecker:
    """Checks raw rows of one table: the data-ID part with the DataID-set checker, the rest against the
    columns. Collects problems (where, key, message); never stops at the first."""

    CHUNK = 5000

    def __init__(self, table: TagTable, *, partial: bool):
        self.table = table
        self.partial = partial  # a row may give only some columns (grid edits); else missing = no value
        columns = list(table.columns.all())
        self.by_name = {c.name: c for c in columns}
        self.active = [c for c in columns if c.retired is None]
        self.checker = DataIdChecker(table.repo, dimensions=list(table.key_dimensions))
        self.result = CheckResult(dimensions=[], rows=[])
        self.checker._set_dimensions(list(table.key_dimensions), "dimensions", self.result)
        self.dimensions = list(self.checker.required or table.key_dimensions)
        self.good: dict[str, tuple[str, dict[str, Any]]] = {}  # canonical key -> (where, values by column key)
        self.ordinals: dict[str, int] = {}  # where -> position in the input, to sort problems

    def _values(self, where: str, raw: dict[str, Any], ordinal: int) -> dict[str, Any] | None:
        values: dict[str, Any] = {}
        bad = False
        for name, value in raw.items():
            column = self.by_name.get(name)
            if column is None:
                continue
            if column.retired is not None:
                if value not in (None, ""):
                    self.result.add_error(Problem(where, name, f"column {name!r} is retired", ordinal))
                    bad = True
                continue
            try:
                values[column.key] = coerce_value(column, value)
            except ValueError as exc:
                self.result.add_error(Problem(where, name, str(exc), ordinal))
                bad = True
        if not self.partial:
            for column in self.active:
                values.setdefault(column.key, None)
        return None if bad else values

    def run(self, rows: Iterable[RawRow]) -> None:
        result = self.result
        if self.checker.required is None:
            return
        id_names = set(DATA_ID_COLUMNS) | set(ALIASES) | {"group", "visit_system"}
        chunk: list[_Pending] = []
        pending_values: dict[str, dict[str, Any] | None] = {}

        def flush() -> None:
            for where, key in self.checker._resolve_chunk(chunk, result):
                values = pending_values.pop(where, None)
                if values is None:
                    continue
                text = canonical_key(self.dimensions, key)
                if text in self.good:
                    result.rows_invalid += 1
                    result.add_error(
                        Problem(where, "", f"the data ID {text} is also at {self.good[text][0]}", result.rows_read)
                    )
                    continue
                self.good[text] = (where, values)
            chunk.clear()
            pending_values.clear()

        for where, raw in rows:
            result.rows_read += 1
            ordinal = result.rows_read
            self.ordinals[where] = ordinal
            if "__error__" in raw:
                result.rows_invalid += 1
                result.add_error(Problem(where, "", raw["__error__"], ordinal))
                continue
            unknown = [k for k in raw if str(k).strip() not in id_names and str(k).strip() not in self.by_name]
            for name in unknown:
                result.add_error(Problem(where, str(name), "not a column of this table nor a data ID key", ordinal))
            id_part = {k: v for k, v in raw.items() if str(k).strip() in id_names}
            values = self._values(
                where, {str(k).strip(): v for k, v in raw.items() if str(k).strip() in self.by_name}, ordinal
            )
            if not id_part:
                result.rows_invalid += 1
                result.add_error(Problem(where, "", f"no data ID ({', '.join(self.dimensions)})", ordinal))
                continue
            pending = self.checker._parse(where, id_part, result)
            if pending is None:
                result.rows_invalid += 1
                continue
            if values is None or unknown:
                # Still check the data ID, so every problem of the row is reported at once.
                result.rows_invalid += 1
                values = None
            names = self.checker._names_of(pending) - {"group", "visit_system"}
            extra = names - set(self.dimensions)
            for name in extra & self.checker.implied:
                pending.values.pop(name, None)
            extra -= self.checker.implied
            if extra:
                result.rows_invalid += 1
                name = sorted(extra)[0]
                result.add_error(
                    Problem(where, name, f"not a key dimension of this table ({', '.join(self.dimensions)})", ordinal)
                )
                continue
            chunk.append(pending)
            pending_values[where] = values  # None: a bad row whose data ID is checked but never stored
            if len(chunk) >= self.CHUNK:
                flush()
        if chunk:
            flush()
        if result.rows_read == 0:
            result.add_error(Problem("start of file", "", "no rows found"))
        result.errors.sort(key=lambda p: p.ordinal)


def _missing_required(table: TagTable, checked: dict[str, tuple[str, dict[str, Any]]]) -> list[Problem]:
    """Rows that would lack a value in a required column once merged with what is stored."""
    required = [c for c in table.columns.all() if c.required and c.retired is None]
    if not required:
        return []
    keys = list(checked)
    stored: dict[str, dict[str, Any]] = {}
    for start in range(0, len(keys), 5000):
        stored.update(
            TagRow.objects.filter(table=table, key__in=keys[start : start + 5000]).values_list("key", "values")
        )
    problems = []
    for key, (where, values) in checked.items():
        merged = {**stored.get(key, {}), **values}
        missing = [c.name for c in required if merged.get(c.key) is None]
        if missing:
            problems.append(Problem(where, missing[0], f"required column {missing[0]!r} has no value"))
    return problems


def _apply(
    *, table: TagTable, user, checked: dict[str, tuple[str, dict[str, Any]]], dimensions: list[str], reason: str
) -> UpsertResult:
    """Store checked rows: create new ones, merge values into existing ones, record every change."""
    result = UpsertResult()
    keys = list(checked)
    existing: dict[str, TagRow] = {}
    for start in range(0, len(keys), 5000):
        for found in TagRow.objects.select_for_update().filter(table=table, key__in=keys[start : start + 5000]):
            existing[found.key] = found
    now = timezone.now()
    creates: list[TagRow] = []
    updates: list[TagRow] = []
    changes: list[TagRowChange] = []
    for key, (_where, values) in checked.items():
        row: TagRow | None = existing.get(key)
        old = dict(row.values) if row is not None else None
        merged = {k: v for k, v in {**(old or {}), **values}.items() if v is not None}
        result.keys.append(key)
        if row is None:
            parts = dict(zip(dimensions, _split_key(key), strict=True))
            creates.append(TagRow(table=table, key=key, values=merged, updated_by=user, **_typed(parts)))
            changes.append(
                TagRowChange(
                    table=table, row_key=key, action=RowAction.CREATE, old=None, new=merged, reason=reason, user=user
                )
            )
            result.created += 1
        elif merged != old:
            row.values = merged
            row.updated = now
            row.updated_by = user
            updates.append(row)
            before = old or {}
            changed = sorted(k for k in set(merged) | set(before) if before.get(k) != merged.get(k))
            changes.append(
                TagRowChange(
                    table=table,
                    row_key=key,
                    action=RowAction.UPDATE,
                    old={k: before.get(k) for k in changed},
                    new={k: merged.get(k) for k in changed},
                    reason=reason,
                    user=user,
                )
            )
            result.updated += 1
        else:
            result.unchanged += 1
    TagRow.objects.bulk_create(creates, batch_size=2000)
    TagRow.objects.bulk_update(updates, ["values", "updated", "updated_by"], batch_size=2000)
    TagRowChange.objects.bulk_create(changes, batch_size=2000)
    return result


def _split_key(key: str) -> list[str]:
    return [part.split("=", 1)[1] for part in key.split(",")]


def _typed(parts: dict[str, str]) -> dict[str, Any]:
    from lsst_adapter.dataids import INTEGER_DIMENSIONS

    return {k: int(v) if k in INTEGER_DIMENSIONS else v for k, v in parts.items()}


def _refresh_count(table: TagTable) -> None:
    TagTable.objects.filter(pk=table.pk).update(row_count=table.rows.count(), updated=timezone.now())
    table.refresh_from_db(fields=["row_count", "updated"])


ON_EXISTING = ("update", "refuse")
EXISTING_SHOWN = 50


def _refuse_existing(table: TagTable, keys: list[str]) -> None:
    """``ConflictError`` (HTTP 409, code ``row_exists``) with the stored rows of ``keys``, if any: adding a row
    must not silently change one that is there (the person chooses to update it)."""
    from ..selectors_tagtables import row_dict

    found: list[TagRow] = []
    total = 0
    for start in range(0, len(keys), 5000):
        rows = TagRow.objects.filter(table=table, key__in=keys[start : start + 5000]).select_related("updated_by")
        total += rows.count()
        found += list(rows.order_by("key")[: max(0, EXISTING_SHOWN - len(found))])
    if not total:
        return
    columns = list(table.columns.filter(retired__isnull=True).order_by("position", "pk"))
    first = found[0]
    values = ", ".join(f"{c.name}={first.values.get(c.key)}" for c in columns if first.values.get(c.key) is not None)
    message = (
        f"{first.key} already has a row" + (f" ({values})" if values else "")
        + (f", and {total - 1} more of these rows exist" if total > 1 else "")
        + "; nothing was stored."
    )  # fmt: skip
    raise ConflictError(
        message,
        code="row_exists",
        existing=[row_dict(r, list(table.key_dimensions), columns) for r in found],
        existing_total=total,
    )


def _finish(
    *,
    table: TagTable,
    user,
    checker: _RowChecker,
    reason: str,
    drop_invalid: bool,
    what: str,
    on_existing: str = "update",
) -> UpsertResult:
    result = checker.result
    for problem in _missing_required(table, checker.good):
        problem.ordinal = checker.ordinals.get(problem.where, 0)
        result.add_error(problem)
    result.errors.sort(key=lambda p: p.ordinal)
    if result.error_total and not drop_invalid:
        total = result.error_total
        raise InputError(
            f"{total} problem{'s' if total != 1 else ''} in {what}; nothing was stored.",
            [p.as_dict() for p in result.errors],
            total,
        )
    bad = {p.where for p in result.errors}
    good = {k: v for k, v in checker.good.items() if v[0] not in bad}
    if on_existing == "refuse":
        _refuse_existing(table, list(good))
    applied = _apply(table=table, user=user, checked=good, dimensions=checker.dimensions, reason=reason)
    applied.rows_read = result.rows_read
    applied.dropped = result.rows_read - len(good)
    applied.dropped_report = [p.as_dict() for p in result.errors]
    _refresh_count(table)
    return applied


@transaction.atomic
def tag_rows_upsert(
    *,
    user,
    table_id: int,
    rows: list[dict[str, Any]],
    reason: str = "",
    drop_invalid: bool = False,
    partial: bool = True,
    on_existing: str = "update",
) -> UpsertResult:
    """Add or change rows. Each row names its data ID (dimensions or alternate keys) and values by column
    name; given values replace the stored ones (``None`` clears), others are kept. Strict by default:
    one problem and nothing is stored; ``drop_invalid`` stores the valid rows and reports the others.
    ``on_existing="refuse"`` (adding rows) stores nothing if a row's data ID already has a row and raises
    ``ConflictError`` with the stored rows; ``"update"`` (the default) changes them."""
    table = _access(user, table_id)
    if on_existing not in ON_EXISTING:
        raise InputError(f"on_existing must be one of {', '.join(ON_EXISTING)}.", field="on_existing")
    if not isinstance(rows, list) or not rows:
        raise InputError("Give at least one row.", field="rows")
    checker = _RowChecker(table, partial=partial)
    checker.run(
        (f"index {i}", dict(r) if isinstance(r, dict) else {"__error__": "a row must be a mapping"})
        for i, r in enumerate(rows)
    )
    return _finish(
        table=table,
        user=user,
        checker=checker,
        reason=reason,
        drop_invalid=drop_invalid,
        what="the rows",
        on_existing=on_existing,
    )


@transaction.atomic
def tag_rows_upload(
    *,
    user,
    table_id: int,
    stream: IO[bytes],
    filename: str,
    format: str | None = None,
    reason: str = "",
    drop_invalid: bool = False,
) -> UpsertResult:
    """Bulk upload of rows from a CSV or JSON file, read as a stream. Every row of the file is checked
    before anything is stored; errors name the line (CSV) or index (JSON) and the key or column."""
    table = _access(user, table_id)
    fmt = (format or (filename.rsplit(".", 1)[-1] if "." in filename else "")).lower().lstrip(".")
    if fmt not in ("csv", "json"):
        raise InputError(
            f"Cannot tell the format of {filename!r}: name it .csv or .json, or give the format.", field="format"
        )
    limit = getattr(settings, "CM_DATAID_UPLOAD_MAX_BYTES", None)
    size = getattr(stream, "size", None)
    if limit and size and size > limit:
        raise InputError(
            f"{filename} is {size:,} bytes; uploads may be at most {limit:,} bytes (CM_DATAID_UPLOAD_MAX_BYTES).",
            field="file",
        )
    checker = _RowChecker(table, partial=True)
    reader = io.BufferedReader(_Raw(stream), 1 << 16)
    try:
        if fmt == "csv":
            checker.run(_at_most(read_csv(reader), upload_max_rows()))
        else:
            _meta, rows = read_json(reader)
            checker.run(_at_most(_unwrap_rows(rows), upload_max_rows()))
    except LimitExceeded as exc:
        raise InputError(
            f"{filename}: {exc.message}", [{"where": exc.where or "file", "key": "", "message": exc.reason}], 1,
            field="file",
        ) from exc  # fmt: skip
    except ReadError as exc:
        raise InputError(
            f"{filename}: {exc}", [{"where": exc.where or "file", "key": "", "message": exc.reason}], 1, field="file"
        ) from exc
    return _finish(
        table=table,
        user=user,
        checker=checker,
        reason=reason or f"upload of {filename}",
        drop_invalid=drop_invalid,
        what=filename,
    )


def _at_most(rows: Iterator[RawRow], limit: int) -> Iterator[RawRow]:
    """The rows, refused once there are more than ``limit`` of them (every good row is held until stored)."""
    for count, (where, raw) in enumerate(rows, start=1):
        if count > limit:
            raise LimitExceeded(
                "rows", f"more than {limit:,} rows in one upload; split the file", where=where, limit=limit
            )
        yield where, raw


def _unwrap_rows(rows: Iterator[RawRow]) -> Iterator[RawRow]:
    """JSON rows may be flat ``{"exposure": ..., "seeing": ...}`` or ``{"data_id": {...}, "values": {...}}``
    (what the JSON download writes)."""
    for where, raw in rows:
        if isinstance(raw, dict) and ("data_id" in raw or "values" in raw) and "__error__" not in raw:
            data_id, values = raw.get("data_id"), raw.get("values", {})
            if not isinstance(data_id, dict) or not isinstance(values, dict):
                yield where, {"__error__": "'data_id' and 'values' must be mappings"}
                continue
            yield where, {**data_id, **values}
        else:
            yield where, raw


class _Raw(io.RawIOBase):
    """A file-like upload as a raw stream (Django's uploaded files are not io.RawIOBase)."""

    def __init__(self, stream: IO[bytes]):
        self._stream = stream

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()


@transaction.atomic
def tag_rows_delete(*, user, table_id: int, keys: list[str], reason: str) -> int:
    """Delete rows by their canonical keys; each deletion keeps the old values and the reason."""
    table = _access(user, table_id)
    if not (reason or "").strip():
        raise ValidationError({"reason": ["Say why these rows are deleted."]})
    keys = [str(k).strip() for k in keys or [] if str(k).strip()]
    if not keys:
        raise InputError("Name the rows to delete (their keys).", field="keys")
    found = {r.key: r for r in TagRow.objects.select_for_update().filter(table=table, key__in=keys)}
    missing = [k for k in keys if k not in found]
    if missing:
        raise InputError(
            f"{len(missing)} of the keys are not rows of {table.name}; nothing was deleted.",
            [{"where": f"index {keys.index(k)}", "key": k, "message": "no such row"} for k in missing[:ERROR_SAMPLE]],
            len(missing),
        )
    TagRowChange.objects.bulk_create(
        [
            TagRowChange(
                table=table,
                row_key=k,
                action=RowAction.DELETE,
                old=r.values,
                new=None,
                reason=reason.strip(),
                user=user,
            )
            for k, r in found.items()
        ]
    )
    TagRow.objects.filter(pk__in=[r.pk for r in found.values()]).delete()
    _refresh_count(table)
    return len(found)
