"""Turn raw rows into primary-key data IDs and check every value against the repo.

Alternate keys are converted: ``obs_id`` → ``exposure``; ``day_obs`` +
``seq_num`` → ``exposure``; a detector's full name → ``detector``; a visit's
name → ``visit``. Exposures, visits and detectors are checked against the
repo's mirror tables (copied from the registry; re-read once when something
is not found there); other dimensions against the registry itself. Errors are
collected with where they are (line or index) and which key, never raised one
at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from core.limits import check_int64
from lsst_adapter.dataids import (
    INTEGER_DIMENSIONS,
    DimensionError,
    dimension_keys,
    implied_dimensions,
    required_dimensions,
)

from ..models import DATA_ID_COLUMNS, ButlerRepo, Detector, Exposure
from .readers import RawRow

CHUNK = 20_000
ERROR_SAMPLE = 50

# Alternate spellings people use in files, mapped to (dimension, alternate key).
ALIASES = {
    "exposure.obs_id": ("exposure", "obs_id"),
    "obs_id": ("exposure", "obs_id"),
    "exposure.day_obs": ("exposure", "day_obs"),
    "exposure.seq_num": ("exposure", "seq_num"),
    "seq_num": ("exposure", "seq_num"),
    "detector.full_name": ("detector", "full_name"),
    "detector_full_name": ("detector", "full_name"),
    "full_name": ("detector", "full_name"),
    "detector_name": ("detector", "full_name"),
    "visit.name": ("visit", "name"),
    "visit_name": ("visit", "name"),
}


@dataclass
class Problem:
    where: str
    key: str
    message: str
    ordinal: int = field(default=0, compare=False, repr=False)

    def as_dict(self) -> dict[str, str]:
        return {"where": self.where, "key": self.key, "message": self.message}

    def __str__(self) -> str:
        key = f", key '{self.key}'" if self.key else ""
        return f"{self.where}{key}: {self.message}"


@dataclass
class ColumnRows:
    """Checked, deduplicated data IDs held as columns (what the CSV fast path produces) rather than tuples.

    ``arrays`` holds one int64 array per integer dimension; ``instrument_codes`` indexes ``instruments``.
    Rows are grouped by instrument and sorted by the integer dimensions within each group."""

    count: int
    arrays: dict[str, Any]
    instrument_codes: Any
    instruments: list[str]

    def column(self, name: str) -> Any:
        import numpy as np

        if name == "instrument":
            return np.asarray(self.instruments, dtype=object)[self.instrument_codes]
        return self.arrays[name]

    def tuples(self, dimensions: list[str]) -> Iterator[tuple]:
        columns = [self.column(d).tolist() for d in dimensions]
        return zip(*columns, strict=True)


@dataclass
class CheckResult:
    dimensions: list[str]
    rows: list[tuple]
    errors: list[Problem] = field(default_factory=list)
    error_total: int = 0
    duplicates: int = 0
    rows_read: int = 0
    rows_invalid: int = 0
    notes: list[str] = field(default_factory=list)
    columns: ColumnRows | None = None  # set instead of ``rows`` by the CSV fast path

    @property
    def count(self) -> int:
        """How many checked, distinct data IDs there are to store."""
        return self.columns.count if self.columns is not None else len(self.rows)

    def add_error(self, problem: Problem) -> None:
        self.error_total += 1
        if not problem.ordinal:
            problem.ordinal = self.rows_read
        if len(self.errors) < ERROR_SAMPLE:
            self.errors.append(problem)


@dataclass
class _Pending:
    where: str
    values: dict[str, Any]
    alternates: dict[tuple[str, str], Any]
    ordinal: int = 0


class TooManyRows(Exception):
    """More distinct valid data IDs than ``DataIdChecker.max_rows`` (what the uploader's quota leaves)."""

    def __init__(self, count: int, where: str):
        super().__init__(f"more than {count:,} data IDs (at {where})")
        self.count = count
        self.where = where


class DataIdChecker:
    """Checks a stream of raw rows for one repo; call ``run(rows)`` once. With ``max_rows``, it stops with
    ``TooManyRows`` as soon as it holds more distinct valid data IDs than that (memory stays bounded)."""

    def __init__(
        self,
        repo: ButlerRepo,
        *,
        dimensions: list[str] | None = None,
        drop_invalid: bool = False,
        max_rows: int | None = None,
    ):
        self.max_rows = max_rows
        self.repo = repo
        self.uri = repo.config_uri
        self.declared = dimensions
        self.drop_invalid = drop_invalid
        self.required: list[str] | None = None
        self.implied: set[str] = set()
        self._known: dict[str, set[tuple]] = {}
        self._detectors_by_id: dict[tuple[str, int], str] | None = None
        self._detectors_by_name: dict[tuple[str, str], int] | None = None
        self._resynced = False

    # --- dimension group -------------------------------------------------------------------------
    def _set_dimensions(self, names: Iterable[str], where: str, result: CheckResult) -> bool:
        names = sorted(set(names))
        try:
            self.required = required_dimensions(self.uri, names)
            self.implied = set(implied_dimensions(self.uri, names))
        except DimensionError as exc:
            result.add_error(Problem(where, "", str(exc)))
            return False
        unsupported = [d for d in self.required if d not in DATA_ID_COLUMNS]
        if unsupported:
            result.add_error(
                Problem(where, unsupported[0], f"dimension {unsupported[0]!r} cannot be stored in a DataID set")
            )
            self.required = None
            return False
        result.dimensions = list(self.required)
        return True

    # --- per-row parsing -----------------------------------------------------------------------
    def _parse(self, where: str, raw: dict[str, Any], result: CheckResult) -> _Pending | None:
        if "__error__" in raw:
            result.add_error(Problem(where, "", raw["__error__"]))
            return None
        values: dict[str, Any] = {}
        alternates: dict[tuple[str, str], Any] = {}
        bad = False
        for key, value in raw.items():
            key = str(key).strip()
            if value is None or (isinstance(value, str) and not value.strip()):
                result.add_error(Problem(where, key, "empty value"))
                bad = True
                continue
            if key in ALIASES:
                alternates[ALIASES[key]] = value
            elif key == "detector" and isinstance(value, str) and not value.strip().lstrip("-").isdigit():
                alternates[("detector", "full_name")] = value.strip()
            elif key == "visit" and isinstance(value, str) and not value.strip().lstrip("-").isdigit():
                alternates[("visit", "name")] = value.strip()
            elif key in DATA_ID_COLUMNS or key in ("group", "visit_system"):
                values[key] = value
            else:
                result.add_error(Problem(where, key, "unknown dimension or alternate key"))
                bad = True
        # day_obs + seq_num name an exposure only when no exposure is given and seq_num is present.
        if ("exposure", "seq_num") in alternates and "exposure" not in values:
            if "day_obs" in values:
                alternates[("exposure", "day_obs")] = values.pop("day_obs")
            elif ("exposure", "day_obs") not in alternates:
                result.add_error(Problem(where, "seq_num", "seq_num needs day_obs to name an exposure"))
                bad = True
        if ("exposure", "day_obs") in alternates and ("exposure", "seq_num") not in alternates:
            result.add_error(Problem(where, "exposure.day_obs", "day_obs needs seq_num to name an exposure"))
            bad = True
        if "instrument" not in values and self.repo.default_instrument:
            values["instrument"] = self.repo.default_instrument
        for dim, alt_key in list(alternates):
            if dim in values:
                alternates.pop((dim, alt_key))  # the primary key wins; the alternate is redundant
        if bad:
            return None
        for name in list(values):
            if name in INTEGER_DIMENSIONS:
                try:
                    values[name] = _as_int(values[name])
                except ValueError as exc:
                    reason = str(exc) if str(exc) else f"{_shown(values[name])} is not an integer"
                    result.add_error(Problem(where, name, reason))
                    bad = True
            else:
                values[name] = str(values[name]).strip()
        return None if bad else _Pending(where, values, alternates, result.rows_read)

    def _names_of(self, pending: _Pending) -> set[str]:
        return set(pending.values) | {dim for dim, _ in pending.alternates}

    # --- lookups ---------------------------------------------------------------------------------
    def _detectors(self) -> None:
        if self._detectors_by_id is None:
            rows = list(Detector.objects.filter(repo=self.repo).values_list("instrument", "detector_id", "full_name"))
            self._detectors_by_id = {(i, d): n for i, d, n in rows}
            self._detectors_by_name = {(i, n): d for i, d, n in rows}

    def _known_keys(self, element: str) -> set[tuple]:
        if element not in self._known:
            self._known[element] = dimension_keys(self.uri, element)
        return self._known[element]

    def _visit_definitions(self) -> set[tuple]:
        """(instrument, exposure, visit) of every exposure of every visit in the registry (read once, and
        only when a data ID gives an exposure and a visit that are not a one-to-one pair in the mirror)."""
        if "visit_definition" not in self._known:
            from lsst_adapter.dataids import visit_definitions

            self._known["visit_definition"] = visit_definitions(self.uri)
        return self._known["visit_definition"]

    def _resync_once(self) -> bool:
        """Something was not in the mirror: read the registry again once, in case it is newer."""
        if self._resynced:
            return False
        from ..services import repo_mirror_sync

        repo_mirror_sync(repo=self.repo)
        self._resynced = True
        self._detectors_by_id = None
        return True

    def _resolve_chunk(self, chunk: list[_Pending], result: CheckResult) -> list[tuple[str, tuple]]:
        """Convert alternates and check existence for a chunk; returns (where, key tuple) of good rows."""
        assert self.required is not None
        self._detectors()
        for attempt in range(2):
            obs_ids = {
                (p.values.get("instrument"), str(p.alternates[("exposure", "obs_id")]))
                for p in chunk
                if ("exposure", "obs_id") in p.alternates
            }
            day_seq = {
                (
                    p.values.get("instrument"),
                    _as_int_or_none(p.alternates[("exposure", "day_obs")]),
                    _as_int_or_none(p.alternates[("exposure", "seq_num")]),
                )
                for p in chunk
                if ("exposure", "seq_num") in p.alternates
            }
            exposure_ids = {(p.values.get("instrument"), p.values["exposure"]) for p in chunk if "exposure" in p.values}
            visit_ids = {(p.values.get("instrument"), p.values["visit"]) for p in chunk if "visit" in p.values}
            visit_names = {
                (p.values.get("instrument"), str(p.alternates[("visit", "name")]))
                for p in chunk
                if ("visit", "name") in p.alternates
            }
            mirror = Exposure.objects.filter(repo=self.repo)
            by_obs = {}
            if obs_ids:
                by_obs = {
                    (i, o): e
                    for i, o, e in mirror.filter(obs_id__in={o for _, o in obs_ids}).values_list(
                        "instrument", "obs_id", "exposure_id"
                    )
                }
            by_dayseq = {}
            if day_seq:
                days = {d for _, d, _ in day_seq if d is not None}
                seqs = {s for _, _, s in day_seq if s is not None}
                by_dayseq = {
                    (i, d, s): e
                    for i, d, s, e in mirror.filter(day_obs__in=days, seq_num__in=seqs).values_list(
                        "instrument", "day_obs", "seq_num", "exposure_id"
                    )
                }
            known_exposures = set()
            visit_of: dict[tuple, int | None] = {}  # (instrument, exposure) -> its one-to-one visit, per the mirror
            if exposure_ids or obs_ids or day_seq:
                wanted = {e for _, e in exposure_ids} | set(by_obs.values()) | set(by_dayseq.values())
                visit_of = {
                    (i, e): v
                    for i, e, v in mirror.filter(exposure_id__in=wanted).values_list(
                        "instrument", "exposure_id", "visit_id"
                    )
                }
                known_exposures = set(visit_of)
            known_visits: set = set()
            by_visit_name: dict = {}
            if visit_ids:
                known_visits = set(
                    mirror.filter(visit_id__in={v for _, v in visit_ids}).values_list("instrument", "visit_id")
                )
                unknown = visit_ids - known_visits
                if unknown:
                    known_visits |= {k for k in self._known_keys("visit") if k in unknown}
            if visit_names:
                by_visit_name = {
                    (i, o): v
                    for i, o, v in mirror.filter(
                        obs_id__in={n for _, n in visit_names}, visit_id__isnull=False
                    ).values_list("instrument", "obs_id", "visit_id")
                }
            missing = (
                any(k not in by_obs for k in obs_ids)
                or any(k not in by_dayseq for k in day_seq)
                or bool(exposure_ids - known_exposures)
                or bool(visit_ids - known_visits)
            )
            if missing and attempt == 0 and self._resync_once():
                continue
            break
        self._detectors()  # reloaded if the mirror was re-read above

        good: list[tuple[str, tuple]] = []
        for p in chunk:
            values = dict(p.values)
            problems: list[Problem] = []
            instrument: Any = values.get("instrument")
            if ("exposure", "obs_id") in p.alternates:
                obs = str(p.alternates[("exposure", "obs_id")])
                if (instrument, obs) in by_obs:
                    values["exposure"] = by_obs[(instrument, obs)]
                else:
                    problems.append(
                        Problem(p.where, "obs_id", f"no exposure with obs_id {obs!r} for instrument {instrument!r}")
                    )
            elif ("exposure", "seq_num") in p.alternates:
                d = _as_int_or_none(p.alternates[("exposure", "day_obs")])
                s = _as_int_or_none(p.alternates[("exposure", "seq_num")])
                if d is None or s is None:
                    problems.append(Problem(p.where, "seq_num", "day_obs and seq_num must be integers"))
                elif (instrument, d, s) in by_dayseq:
                    values["exposure"] = by_dayseq[(instrument, d, s)]
                else:
                    problems.append(
                        Problem(
                            p.where,
                            "seq_num",
                            f"no exposure with day_obs {d} and seq_num {s} for instrument {instrument!r}",
                        )
                    )
            elif "exposure" in values and (instrument, values["exposure"]) not in known_exposures:
                problems.append(
                    Problem(
                        p.where,
                        "exposure",
                        f"exposure {values['exposure']} does not exist for instrument {instrument!r}",
                    )
                )
            if ("detector", "full_name") in p.alternates:
                name = str(p.alternates[("detector", "full_name")])
                detector = (self._detectors_by_name or {}).get((instrument, name))
                if detector is None:
                    problems.append(
                        Problem(p.where, "detector", f"no detector named {name!r} for instrument {instrument!r}")
                    )
                else:
                    values["detector"] = detector
            elif "detector" in values and (instrument, values["detector"]) not in (self._detectors_by_id or {}):
                problems.append(
                    Problem(
                        p.where,
                        "detector",
                        f"detector {values['detector']} does not exist for instrument {instrument!r}",
                    )
                )
            if ("visit", "name") in p.alternates:
                name = str(p.alternates[("visit", "name")])
                if (instrument, name) in by_visit_name:
                    values["visit"] = by_visit_name[(instrument, name)]
                else:
                    problems.append(Problem(p.where, "visit", f"no visit named {name!r} for instrument {instrument!r}"))
            elif "visit" in values and (instrument, values["visit"]) not in known_visits:
                problems.append(
                    Problem(p.where, "visit", f"visit {values['visit']} does not exist for instrument {instrument!r}")
                )
            if "exposure" in values and "visit" in values and not problems:
                # Both given: they must name the same observation (the registry's visit_definition).
                pair = (instrument, values["exposure"])
                if visit_of.get(pair) != values["visit"] and (
                    (instrument, values["exposure"], values["visit"]) not in self._visit_definitions()
                ):
                    problems.append(
                        Problem(
                            p.where,
                            "visit",
                            f"visit {values['visit']} does not include exposure {values['exposure']} "
                            f"for instrument {instrument!r}",
                        )
                    )
            if instrument is not None and (instrument,) not in self._known_keys("instrument"):
                problems.append(Problem(p.where, "instrument", f"instrument {instrument!r} is not in this repo"))
            for dim in ("band", "physical_filter", "day_obs", "skymap", "tract", "patch"):
                if dim in values and dim in self.required:
                    element_required = [d for d in self.required if d in _required_of(dim)]
                    key = tuple(values[d] for d in element_required)
                    if key not in self._known_keys(dim):
                        problems.append(Problem(p.where, dim, f"{dim} {values[dim]!r} does not exist in this repo"))
            missing_dims = [d for d in self.required if d not in values]
            if missing_dims and not problems:
                problems.append(Problem(p.where, missing_dims[0], f"missing required dimension {missing_dims[0]!r}"))
            if problems:
                result.rows_invalid += 1
                for problem in problems:
                    problem.ordinal = p.ordinal
                    result.add_error(problem)
                continue
            good.append((p.where, tuple(values[d] for d in self.required)))
        return good

    # --- the whole stream ----------------------------------------------------------------------
    def run(self, rows: Iterator[RawRow]) -> CheckResult:
        result = CheckResult(dimensions=[], rows=[])
        seen: set[tuple] = set()
        chunk: list[_Pending] = []
        if self.declared:
            self._set_dimensions(self.declared, "dimensions", result)

        def flush() -> None:
            if not chunk or self.required is None:
                chunk.clear()
                return
            for _, key in self._resolve_chunk(chunk, result):
                if key in seen:
                    result.duplicates += 1
                    continue
                seen.add(key)
                result.rows.append(key)
            chunk.clear()
            if self.max_rows is not None and len(result.rows) > self.max_rows:
                raise TooManyRows(self.max_rows, where)

        where = "start of file"
        for where, raw in rows:
            result.rows_read += 1
            pending = self._parse(where, raw, result)
            if pending is None:
                result.rows_invalid += 1
                continue
            names = self._names_of(pending) - {"group", "visit_system"}
            if self.required is None and not self.declared and not self._set_dimensions(names, where, result):
                return result
            if self.required is None:
                return result
            extra = names - set(self.required)
            implied_only = extra & self.implied
            for name in implied_only:
                pending.values.pop(name, None)  # implied values (band with exposure, ...) are derived, not stored
            extra -= implied_only
            if extra:
                result.rows_invalid += 1
                result.add_error(
                    Problem(where, sorted(extra)[0], f"not a dimension of this set ({', '.join(self.required)})")
                )
                continue
            chunk.append(pending)
            if len(chunk) >= CHUNK:
                flush()
        flush()
        if result.rows_read == 0:
            result.add_error(Problem("start of file", "", "no data IDs found"))
        result.errors.sort(key=lambda problem: problem.ordinal)
        return result


def _as_int(value: Any) -> int:
    """An integer dimension value; ``ValueError`` (its message says why when it is not just "not an integer")
    for anything else, NaN, infinity and integers beyond the 64 bits PostgreSQL's bigint holds included."""
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        return check_int64(value)
    if isinstance(value, float):
        if value.is_integer():
            return check_int64(int(value))
        raise ValueError
    text = str(value).strip()
    if len(text.lstrip("+-")) > 19 and text.lstrip("+-").isdigit():
        raise ValueError(f"{text[:20]}... ({len(text)} digits) is out of range (a 64-bit integer)")
    try:
        number = int(text)
    except ValueError:
        raise ValueError from None  # the caller says "... is not an integer"
    return check_int64(number)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:50]}... ({len(text)} characters)"


def _as_int_or_none(value: Any) -> int | None:
    try:
        return _as_int(value)
    except (TypeError, ValueError):
        return None


def _required_of(element: str) -> tuple[str, ...]:
    return {
        "band": ("band",),
        "physical_filter": ("instrument", "physical_filter"),
        "day_obs": ("instrument", "day_obs"),
        "skymap": ("skymap",),
        "tract": ("skymap", "tract"),
        "patch": ("skymap", "tract", "patch"),
    }[element]
