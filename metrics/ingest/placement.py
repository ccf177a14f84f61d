"""Placing measurements: their data ID checked against the repo's mirror, their unit against astropy, their
run against the campaign. Each check returns a problem message (or fills in the row); none raises."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from core.limits import check_int64
from tagging.models import DATA_ID_COLUMNS, ButlerRepo, Detector, Exposure

KEY_ORDER = DATA_ID_COLUMNS  # the same dimension columns, in the same order, as stored data IDs
INTEGER_KEYS = {"exposure", "visit", "detector", "day_obs", "tract", "patch"}
# Implied by an exposure or a visit: kept in their columns, but not part of the canonical key.
IMPLIED_BY_EXPOSURE = {"day_obs", "band", "physical_filter"}
_CACHE_LIMIT = 200_000


def canonical_key(data_id: Mapping[str, Any]) -> str:
    """``instrument=DemoCam,exposure=2025112100150,detector=4``: the required keys in a fixed order."""
    has_exposure = data_id.get("exposure") is not None or data_id.get("visit") is not None
    parts = []
    for key in KEY_ORDER:
        value = data_id.get(key)
        if value is None or (has_exposure and key in IMPLIED_BY_EXPOSURE):
            continue
        parts.append(f"{key}={value}")
    return ",".join(parts)


class UnitChecker:
    """Units astropy understands (``arcsec``, ``ct``, ``mag``, ``pix``, ``''`` for dimensionless)."""

    def __init__(self) -> None:
        self._known: dict[str, str] = {"": ""}

    def check(self, unit: str) -> str:
        """'' if fine, else the problem."""
        if unit in self._known:
            return self._known[unit]
        import astropy.units as u

        try:
            u.Unit(unit, parse_strict="raise")
            problem = ""
        except (ValueError, TypeError) as exc:
            problem = f"unknown unit {unit!r} ({str(exc).splitlines()[0][:120]})"
        if len(unit) > 32:
            problem = f"unit {unit[:40]!r}... is longer than 32 characters"
        self._known[unit] = problem
        return problem


class DataIdPlacer:
    """Checks data IDs against the repo's exposure and detector mirror, and fills in what they imply."""

    def __init__(self, repo: ButlerRepo):
        self.repo = repo
        self.default_instrument = repo.default_instrument or ""
        self._detectors = set(Detector.objects.filter(repo=repo).values_list("instrument", "detector_id"))
        self._exposures: dict[int, dict[str, Any] | None] = {}
        self._visits: dict[int, dict[str, Any] | None] = {}

    def prefetch(self, data_ids: Iterable[Mapping[str, Any]]) -> None:
        """Look up the exposures and visits of a batch in two queries."""
        exposures: set[int] = set()
        visits: set[int] = set()
        for data_id in data_ids:
            for key, bucket in (("exposure", exposures), ("visit", visits)):
                try:
                    value = check_int64(int(data_id[key])) if data_id.get(key) not in (None, "") else None
                except (TypeError, ValueError, OverflowError):
                    value = None
                if value is not None:
                    bucket.add(value)
        exposures -= set(self._exposures)
        visits -= set(self._visits)
        if len(self._exposures) + len(self._visits) > _CACHE_LIMIT:
            self._exposures.clear()
            self._visits.clear()
        fields = ("instrument", "exposure_id", "visit_id", "day_obs", "band", "physical_filter")
        if exposures:
            for row in Exposure.objects.filter(repo=self.repo, exposure_id__in=exposures).values(*fields):
                self._exposures[row["exposure_id"]] = row
            for missing in exposures - set(self._exposures):
                self._exposures[missing] = None
        if visits:
            for row in Exposure.objects.filter(repo=self.repo, visit_id__in=visits).values(*fields):
                self._visits[row["visit_id"]] = row
            for missing in visits - set(self._visits):
                self._visits[missing] = None

    def place(self, raw: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str, str]:
        """(columns, key, '') for a data ID the repo knows, else (None, offending key, problem)."""
        data_id: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in KEY_ORDER:
                return None, key, f"{key!r} is not a dimension a metric can be stored by ({', '.join(KEY_ORDER)})"
            if value in (None, ""):
                continue
            if key in INTEGER_KEYS:
                try:
                    value = check_int64(int(value))
                except ValueError as exc:
                    if "out of range" in str(exc):
                        return None, key, str(exc)
                    return None, key, f"{value!r} is not a whole number"
                except (TypeError, OverflowError):
                    return None, key, f"{value!r} is not a whole number"
            else:
                value = str(value)
            data_id[key] = value
        if not data_id:
            return None, "", "no data ID: say which exposure, visit, detector, tract/patch... it measures"
        instrument = data_id.get("instrument") or self.default_instrument
        if ("exposure" in data_id or "visit" in data_id or "detector" in data_id) and not instrument:
            return None, "instrument", "no instrument, and the repo has no default instrument"
        if instrument:
            data_id["instrument"] = instrument
        record = None
        if "exposure" in data_id:
            record = self._exposures.get(data_id["exposure"])
            if record is None:
                return None, "exposure", f"exposure {data_id['exposure']} is not in repo {self.repo.label}"
        if "visit" in data_id:
            visit_record = self._visits.get(data_id["visit"])
            if visit_record is None:
                return None, "visit", f"visit {data_id['visit']} is not in repo {self.repo.label}"
            if record is not None and visit_record["exposure_id"] != record["exposure_id"]:
                return None, "visit", f"visit {data_id['visit']} is not the visit of exposure {data_id['exposure']}"
            record = visit_record
        if record is not None:
            if record["instrument"] != instrument:
                return (
                    None,
                    "instrument",
                    f"{instrument!r} is not the instrument of this exposure ({record['instrument']})",
                )
            for key in ("day_obs", "band", "physical_filter"):
                if key in data_id and record[key] and data_id[key] != record[key]:
                    return None, key, f"{data_id[key]!r} does not match the exposure's {key} {record[key]!r}"
        if "detector" in data_id and (instrument, data_id["detector"]) not in self._detectors:
            return None, "detector", f"detector {data_id['detector']} is not a detector of {instrument}"
        key = canonical_key(data_id)
        if len(key) > 200:
            return None, "", "the data ID is too long to store (200 characters)"
        if record is not None:
            data_id.setdefault("exposure", record["exposure_id"])
            if record["visit_id"] is not None:
                data_id.setdefault("visit", record["visit_id"])
            for name in ("day_obs", "band", "physical_filter"):
                if record[name]:
                    data_id.setdefault(name, record[name])
        return data_id, key, ""
