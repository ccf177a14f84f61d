"""Reading a Butler registry: instruments, detectors and exposures as plain dicts."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

_lock = threading.Lock()
_butlers: dict[tuple[str, bool], Any] = {}


class RepoError(Exception):
    """A Butler repository could not be opened or queried; the message says why."""


def open_butler(uri: str, *, writeable: bool = False):
    """A cached Butler for ``uri`` (opening one reads its config and connects to the registry)."""
    key = (uri, writeable)
    with _lock:
        butler = _butlers.get(key)
        if butler is None:
            from lsst.daf.butler import Butler

            try:
                butler = Butler.from_config(uri, writeable=writeable)
            except Exception as exc:  # the middleware raises many kinds; the caller needs one
                raise RepoError(f"Cannot open the Butler repo at {uri}: {exc}") from exc
            _butlers[key] = butler
        return butler


def forget_butlers() -> None:
    """Drop cached Butlers (tests that rebuild repositories call this)."""
    with _lock:
        _butlers.clear()


def _utc(value) -> datetime | None:
    if value is None:
        return None
    return value.utc.to_datetime(timezone=UTC) if hasattr(value, "to_datetime") else value


def read_detectors(uri: str) -> list[dict[str, Any]]:
    butler = open_butler(uri)
    return [
        {
            "instrument": r.instrument,
            "detector_id": int(r.id),
            "full_name": r.full_name or str(r.id),
            "raft": r.raft or "",
            "purpose": r.purpose or "",
        }
        for r in butler.query_dimension_records("detector", limit=None)
    ]


def read_exposures(uri: str) -> list[dict[str, Any]]:
    """Every exposure record of the repo, with its one-to-one visit (if defined), as plain dicts."""
    butler = open_butler(uri)
    visit_of: dict[tuple[str, int], int] = {}
    if "visit_definition" in butler.dimensions.elements.names:
        for d in butler.query_dimension_records("visit_definition", limit=None):
            visit_of[(d.instrument, int(d.exposure))] = int(d.visit)
    bands = {(r.instrument, r.name): r.band for r in butler.query_dimension_records("physical_filter", limit=None)}
    out = []
    for r in butler.query_dimension_records("exposure", limit=None):
        span = r.timespan
        out.append(
            {
                "instrument": r.instrument,
                "exposure_id": int(r.id),
                "obs_id": r.obs_id,
                "day_obs": int(r.day_obs),
                "seq_num": int(r.seq_num),
                "physical_filter": r.physical_filter,
                "band": bands.get((r.instrument, r.physical_filter), "") or "",
                "observation_type": r.observation_type or "",
                "observation_reason": r.observation_reason or "",
                "target_name": r.target_name or "",
                "science_program": r.science_program or "",
                "exposure_time": r.exposure_time,
                "ra": r.tracking_ra,
                "dec": r.tracking_dec,
                "zenith_angle": r.zenith_angle,
                "azimuth": r.azimuth,
                "begin": _utc(span.begin) if span is not None else None,
                "end": _utc(span.end) if span is not None else None,
                "visit_id": visit_of.get((r.instrument, int(r.id))),
            }
        )
    return out
