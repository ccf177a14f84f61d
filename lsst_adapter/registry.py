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


def _utc_from_nsec(values: list[int | None]) -> list[datetime | None]:
    """Timespan bounds (TAI nanoseconds since 1970, as ``Timespan.nsec`` holds them) as UTC datetimes,
    converted in one vectorised astropy call: one ``Time`` per bound takes about 0.5 ms, too slow for
    100,000 exposures. Same arithmetic as ``TimeConverter.nsec_to_astropy``; ``None`` stays ``None``."""
    import astropy.time
    import erfa
    import numpy as np
    from lsst.daf.butler.time_utils import TimeConverter

    finite = [i for i, v in enumerate(values) if v is not None]
    out: list[datetime | None] = [None] * len(values)
    if not finite:
        return out
    epoch = TimeConverter().epoch
    nsec = np.array([values[i] for i in finite], dtype=np.int64)
    seconds, rest = np.divmod(nsec, 1_000_000_000)
    days, day_seconds = np.divmod(seconds, 86_400)
    jd1 = float(epoch.jd1) + days.astype(np.float64)
    jd2 = float(epoch.jd2) + (day_seconds.astype(np.float64) + rest / 1e9) / 86_400
    utc = astropy.time.Time(jd1, jd2, format="jd", scale="tai", precision=6).utc
    # What Time.to_datetime does, without its per-element astropy timezone object (most of its cost).
    years, months, days_, hmsf = erfa.d2dtf(b"UTC", 6, utc.jd1, utc.jd2)
    for i, y, mo, d, h, mi, sec, us in zip(
        finite,
        years.tolist(),
        months.tolist(),
        days_.tolist(),
        hmsf["h"].tolist(),
        hmsf["m"].tolist(),
        hmsf["s"].tolist(),
        hmsf["f"].tolist(),
        strict=True,
    ):
        if sec >= 60:
            raise ValueError(f"{y}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}:{sec} is within a leap second")
        out[i] = datetime(y, mo, d, h, mi, sec, us, tzinfo=UTC)
    return out


def ping(uri: str) -> None:
    """Open the repo (cached) and ask its registry one cheap question; raises ``RepoError`` if either fails."""
    butler = open_butler(uri)
    try:
        butler.query_dimension_records("instrument", limit=1)
    except Exception as exc:  # a registry database that went away, a file that vanished, ...
        raise RepoError(f"The registry of {uri} did not answer: {type(exc).__name__}") from exc


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
        # explain=False: a repo with no visits defined yet is normal, not an error.
        for d in butler.query_dimension_records("visit_definition", limit=None, explain=False):
            visit_of[(d.instrument, int(d.exposure))] = int(d.visit)
    bands = {
        (r.instrument, r.name): r.band
        for r in butler.query_dimension_records("physical_filter", limit=None, explain=False)
    }
    out = []
    bounds: list[int | None] = []
    for r in butler.query_dimension_records("exposure", limit=None, explain=False):
        span = r.timespan
        if span is None or span.isEmpty():
            bounds += [None, None]
        else:
            converter_min, converter_max = _nsec_limits()
            bounds += [None if span.nsec[0] == converter_min else span.nsec[0]]
            bounds += [None if span.nsec[1] == converter_max else span.nsec[1]]
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
                "begin": None,  # filled in below, all at once
                "end": None,
                "visit_id": visit_of.get((r.instrument, int(r.id))),
            }
        )
    moments = _utc_from_nsec(bounds)
    for i, row in enumerate(out):
        row["begin"], row["end"] = moments[2 * i], moments[2 * i + 1]
    return out


def _nsec_limits() -> tuple[int, int]:
    from lsst.daf.butler.time_utils import TimeConverter

    converter = TimeConverter()
    return converter.min_nsec, converter.max_nsec
