"""A large DemoCam repository built fast, for benchmarks: dimension records inserted in bulk, raws as rows.

``build_bulk_repo`` makes a Butler repo (SQLite registry) holding the DemoCam
instrument with ``detectors`` detectors and ``exposures`` exposures spread over
consecutive nights (``exposure = day_obs * 100000 + seq_num``, ``obs_id`` like
``DC_O_20260101_000001``), and registers ``raws`` ``raw`` datasets (rows only,
no files: ``insertDatasets(..., expand=False)``) for the first exposure × detector
data IDs in exposure-major order. No visits. Everything is deterministic.

About a minute for 111,112 exposures and 150,000 raws on a 2-core machine,
where ``build_demo_repo`` (one ``put`` per raw, visits, regions) would take hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .demo import (
    BANDS,
    DETECTOR_NAMES,
    INSTRUMENT,
    RAW_COLLECTION,
    RAW_DATASET_TYPE,
    RAW_STORAGE_CLASS,
    _analyze,
    insert_instrument,
)

CHUNK = 20_000
EXPOSURE_SECONDS = 30
CADENCE_SECONDS = 2  # exposures start every 2 s: a night of 27,778 exposures lasts about 15.4 hours


@dataclass
class BulkRepoSummary:
    root: str
    instrument: str
    detectors: int
    exposures: int
    raws: int
    nights: list[int]


def bulk_nights(exposures: int, first_night: int = 20260101, per_night: int = 27_778) -> list[int]:
    """The day_obs values used for ``exposures`` exposures, ``per_night`` a night."""
    start = datetime.strptime(str(first_night), "%Y%m%d").replace(tzinfo=UTC)
    count = max(1, -(-exposures // per_night))
    return [int((start + timedelta(days=i)).strftime("%Y%m%d")) for i in range(count)]


def bulk_exposure_ids(exposures: int, first_night: int = 20260101, per_night: int = 27_778) -> list[int]:
    """Every exposure id of the repo, in order: night by night, ``seq_num`` 1, 2, …"""
    nights = bulk_nights(exposures, first_night, per_night)
    return [nights[i // per_night] * 100_000 + (i % per_night) + 1 for i in range(exposures)]


def build_bulk_repo(
    root: str | Path,
    *,
    exposures: int = 111_112,
    detectors: int = 9,
    raws: int = 150_000,
    first_night: int = 20260101,
    per_night: int = 27_778,
) -> BulkRepoSummary:
    """Create the repo at ``root`` (refuses a directory that already holds ``butler.yaml``)."""
    import astropy.time
    from lsst.daf.butler import Butler, CollectionType, DataCoordinate, DatasetType, Timespan
    from lsst.daf.butler.time_utils import TimeConverter

    root = Path(root)
    if (root / "butler.yaml").exists():
        raise FileExistsError(f"{root} already holds a Butler repo (butler.yaml exists).")
    if not 1 <= detectors <= len(DETECTOR_NAMES):
        raise ValueError(f"detectors must be between 1 and {len(DETECTOR_NAMES)}")
    if per_night >= 100_000:
        raise ValueError("per_night must be below 100000 (seq_num is the last five digits of the exposure id)")
    root.mkdir(parents=True, exist_ok=True)
    Butler.makeRepo(str(root))
    butler = Butler.from_config(str(root), writeable=True)
    registry = butler.registry
    nights = bulk_nights(exposures, first_night, per_night)
    converter = TimeConverter()

    def nsec(moment: datetime) -> int:
        return converter.astropy_to_nsec(astropy.time.Time(moment.replace(tzinfo=None), scale="utc"))

    night_start = {}
    for night in nights:
        # Observing starts at 23:00 UTC on day_obs, as in the small demo repo.
        night_start[night] = nsec(datetime.strptime(str(night), "%Y%m%d").replace(tzinfo=UTC) + timedelta(hours=23))

    with butler.transaction():
        insert_instrument(registry, detectors=detectors, nights=nights)
        for start in range(0, exposures, CHUNK):
            stop = min(start + CHUNK, exposures)
            groups, rows = [], []
            for i in range(start, stop):
                night = nights[i // per_night]
                seq = i % per_night + 1
                obs_id = f"DC_O_{night}_{seq:06d}"
                begin = night_start[night] + (seq - 1) * CADENCE_SECONDS * 10**9
                band = BANDS[i % len(BANDS)]
                groups.append({"instrument": INSTRUMENT, "name": obs_id})
                rows.append(
                    {
                        "instrument": INSTRUMENT,
                        "id": night * 100_000 + seq,
                        "day_obs": night,
                        "group": obs_id,
                        "physical_filter": f"DemoCam-{band}",
                        "obs_id": obs_id,
                        "exposure_time": float(EXPOSURE_SECONDS),
                        "dark_time": EXPOSURE_SECONDS + 0.5,
                        "observation_type": "science",
                        "observation_reason": "science",
                        "seq_num": seq,
                        "seq_start": seq,
                        "seq_end": seq,
                        "target_name": "BENCH",
                        "science_program": "bench-survey",
                        "tracking_ra": float(i % 360),
                        "tracking_dec": -30.0,
                        "sky_angle": 0.0,
                        "azimuth": 180.0,
                        "zenith_angle": 20.0,
                        "has_simulated": True,
                        "can_see_sky": True,
                        "timespan": Timespan(None, None, _nsec=(begin, begin + EXPOSURE_SECONDS * 10**9)),
                    }
                )
            registry.insertDimensionData("group", *groups)
            registry.insertDimensionData("exposure", *rows)

    inserted = 0
    if raws:
        dataset_type = DatasetType(
            RAW_DATASET_TYPE, ("instrument", "exposure", "detector"), RAW_STORAGE_CLASS, universe=butler.dimensions
        )
        registry.registerDatasetType(dataset_type)
        butler.collections.register(RAW_COLLECTION, CollectionType.RUN)
        group = dataset_type.dimensions
        assert list(group.required) == ["instrument", "detector", "exposure"], list(group.required)
        exposure_ids = bulk_exposure_ids(exposures, first_night, per_night)
        total = min(raws, exposures * detectors)
        with butler.transaction():
            for start in range(0, total, CHUNK):
                coords = [
                    # Values in the group's required order (instrument, detector, exposure).
                    DataCoordinate.from_required_values(
                        group, (INSTRUMENT, k % detectors, exposure_ids[k // detectors])
                    )
                    for k in range(start, min(start + CHUNK, total))
                ]
                registry.insertDatasets(dataset_type, coords, run=RAW_COLLECTION, expand=False)
                inserted += len(coords)
    _analyze(root)
    return BulkRepoSummary(
        root=str(root), instrument=INSTRUMENT, detectors=detectors, exposures=exposures, raws=inserted, nights=nights
    )
