"""The demo instrument ``DemoCam`` and a builder for a small but realistic Butler repository.

``lsst-obs-base`` is not on PyPI, so the instrument is defined by inserting
dimension records directly (universe version 8): 9 detectors ``R22_S00`` …
``R22_S22``, physical filters for bands ugrizy, a few nights of exposures
numbered ``day_obs * 100000 + seq_num`` with ``obs_id`` like
``DC_O_20251121_000156``, bias/dark/flat calibrations and science exposures
with pointings, one-to-one visits, and a small ``raw`` dataset (a YAML mapping
of synthetic image statistics) per exposure × detector in ``DemoCam/raw/all``.

Regions, so that the registry's spatial join works as in a DRP repo: each visit covers a 0.7° square
around its field, each detector one cell of a 3 × 3 grid of it (``visit_detector_region``: detector
``R22_Sxy`` at column x (RA) and row y (Dec)). The skymap ``demo_sky_v1`` (``skymap``, ``tract``,
``patch`` records defined directly, as obs packages do not exist on PyPI) has two tracts per field, west
(``2k``) and east (``2k + 1``) of the field's centre, each 1° × 1° and cut into 2 × 2 patches of 0.5°
(patch id ``2 * cell_y + cell_x``): a visit overlaps both tracts of its field and two patches of each.

Everything is deterministic: the same arguments build the same repository.
The raw statistics vary between exposures and a few are clearly bad (poor
seeing, a dome light left on, a dead amplifier) so that QA has something to find.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

INSTRUMENT = "DemoCam"
RAW_COLLECTION = "DemoCam/raw/all"
RAW_DATASET_TYPE = "raw"
RAW_STORAGE_CLASS = "StructuredDataDict"
BANDS = ("u", "g", "r", "i", "z", "y")
DETECTOR_NAMES = tuple(f"R22_S{x}{y}" for x in range(3) for y in range(3))
VISIT_SYSTEM = (0, "one-to-one")
# Pointings of the demo fields (degrees).
TARGETS = {
    "DEEP-A": (53.125, -28.100),
    "DEEP-B": (150.100, 2.200),
    "WIDE-C": (9.450, -44.000),
    "WIDE-D": (35.700, -4.750),
}
DEFAULT_NIGHTS = (20251121, 20251122, 20251123)
SKYMAP = "demo_sky_v1"
VISIT_HALF_WIDTH = 0.35  # degrees: a visit covers 0.7° x 0.7°
TRACT_WIDTH = 1.0  # degrees (RA x cos(Dec), and Dec)
PATCHES_PER_SIDE = 2
CALIBRATION_SEQUENCE = (("bias", 1), ("bias", 2), ("dark", 3), ("dark", 4), ("flat", 5), ("flat", 6))
FIRST_SCIENCE_SEQ = 150


@dataclass(frozen=True)
class ExposureSpec:
    """One planned exposure of the demo repo."""

    day_obs: int
    seq_num: int
    observation_type: str
    band: str
    target: str
    start: datetime
    exposure_time: float
    quality: str  # "good", "poor-seeing", "dome-light", "dead-amp"

    @property
    def exposure_id(self) -> int:
        return self.day_obs * 100_000 + self.seq_num

    @property
    def obs_id(self) -> str:
        return f"DC_O_{self.day_obs}_{self.seq_num:06d}"


@dataclass
class DemoRepoSummary:
    root: str
    instrument: str
    detectors: int
    exposures: int
    science_exposures: int
    raws: int
    nights: list[int] = field(default_factory=list)


def plan_exposures(
    nights: tuple[int, ...] = DEFAULT_NIGHTS, science_per_night: int = 12, seed: int = 2025
) -> list[ExposureSpec]:
    """The exposures of the demo repo: calibrations, then science exposures cycling through bands and fields."""
    rng = random.Random(seed)
    specs: list[ExposureSpec] = []
    for night_index, day_obs in enumerate(nights):
        date = datetime.strptime(str(day_obs), "%Y%m%d").replace(tzinfo=UTC)
        # Observing starts at 23:00 UTC on day_obs (the demo site is in Chile, UTC-3, day_obs rolls at noon local).
        clock = date + timedelta(hours=23)
        for obs_type, seq in CALIBRATION_SEQUENCE:
            exptime = 0.0 if obs_type == "bias" else (30.0 if obs_type == "dark" else 5.0)
            specs.append(ExposureSpec(day_obs, seq, obs_type, "r", "", clock, exptime, "good"))
            clock += timedelta(seconds=max(exptime, 2.0) + 10)
        clock += timedelta(hours=1)
        for i in range(science_per_night):
            band = BANDS[(i + night_index) % len(BANDS)]
            target = list(TARGETS)[(i // 3 + night_index) % len(TARGETS)]
            roll = rng.random()
            quality = "good"
            if roll < 0.08:
                quality = "dome-light"
            elif roll < 0.20:
                quality = "poor-seeing"
            elif roll < 0.25:
                quality = "dead-amp"
            specs.append(ExposureSpec(day_obs, FIRST_SCIENCE_SEQ + i, "science", band, target, clock, 30.0, quality))
            clock += timedelta(seconds=30 + 8)
    return specs


def raw_content(spec: ExposureSpec, detector: int, seed: int = 2025) -> dict[str, Any]:
    """Synthetic image statistics of one raw: deterministic, varying, and clearly bad for bad exposures."""
    rng = random.Random(f"{seed}-{spec.exposure_id}-{detector}")
    night_seeing = {0: 0.85, 1: 1.05, 2: 0.75}.get(spec.day_obs % 3, 0.9)
    seeing = night_seeing * (1 + 0.12 * rng.gauss(0, 1)) + 0.03 * abs(detector - 4)
    sky = {"u": 180.0, "g": 420.0, "r": 950.0, "i": 1500.0, "z": 2300.0, "y": 2900.0}[spec.band] * (
        1 + 0.1 * rng.gauss(0, 1)
    )
    stars = max(0, int(rng.gauss(900, 120)))
    zeropoint = {"u": 26.5, "g": 28.3, "r": 28.1, "i": 27.9, "z": 27.5, "y": 26.6}[spec.band] + rng.gauss(0, 0.03)
    dead_fraction = 0.0
    if spec.observation_type != "science":
        sky, stars, seeing = (0.0 if spec.observation_type in ("bias", "dark") else 20000.0), 0, 0.0
    elif spec.quality == "poor-seeing":
        seeing *= 1.9
        stars = int(stars * 0.6)
    elif spec.quality == "dome-light":
        sky *= 6.5
        stars = int(stars * 0.35)
        zeropoint -= 0.8
    elif spec.quality == "dead-amp" and detector in (2, 5):
        dead_fraction = 0.125
        stars = int(stars * 0.85)
    return {
        "obs_id": spec.obs_id,
        "exposure": spec.exposure_id,
        "detector": detector,
        "detector_name": DETECTOR_NAMES[detector],
        "band": spec.band,
        "observation_type": spec.observation_type,
        "exposure_time": spec.exposure_time,
        "seeing_arcsec": round(seeing, 4),
        "sky_counts": round(sky, 2),
        "n_stars": stars,
        "zeropoint": round(zeropoint, 4),
        "dead_pixel_fraction": dead_fraction,
        "bias_level": round(1000 + 5 * rng.gauss(0, 1), 2),
        "read_noise": round(5.5 + 0.3 * rng.gauss(0, 1), 3),
    }


def _box(ra_min: float, ra_max: float, dec_min: float, dec_max: float):
    """A convex polygon with these corners (RA and Dec in degrees)."""
    from lsst.sphgeom import ConvexPolygon, LonLat, UnitVector3d

    corners = [(ra_min, dec_min), (ra_max, dec_min), (ra_max, dec_max), (ra_min, dec_max)]
    return ConvexPolygon([UnitVector3d(LonLat.fromDegrees(r, d)) for r, d in corners])


def _cos_dec(dec: float) -> float:
    return max(math.cos(math.radians(dec)), 1e-3)


def _region(ra: float, dec: float, half_width_deg: float = VISIT_HALF_WIDTH):
    width = half_width_deg / _cos_dec(dec)
    return _box(ra - width, ra + width, dec - half_width_deg, dec + half_width_deg)


def detector_region(ra: float, dec: float, detector: int):
    """The region of detector ``R22_Sxy`` (index ``3x + y``): column x in RA, row y in Dec of the visit's square."""
    column, row = divmod(detector, 3)
    cell = 2 * VISIT_HALF_WIDTH / 3
    ra_min = ra - VISIT_HALF_WIDTH / _cos_dec(dec) + column * cell / _cos_dec(dec)
    dec_min = dec - VISIT_HALF_WIDTH + row * cell
    return _box(ra_min, ra_min + cell / _cos_dec(dec), dec_min, dec_min + cell)


def skymap_records() -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``skymap``, ``tract`` and ``patch`` records of ``demo_sky_v1`` (see the module's docstring)."""
    import hashlib

    skymap = {
        "name": SKYMAP,
        "hash": hashlib.sha1(SKYMAP.encode(), usedforsecurity=False).digest(),  # an id, as skymaps have
        "tract_max": 2 * len(TARGETS),
        "patch_nx_max": PATCHES_PER_SIDE,
        "patch_ny_max": PATCHES_PER_SIDE,
    }
    tracts, patches = [], []
    patch_width = TRACT_WIDTH / PATCHES_PER_SIDE
    for k, (ra, dec) in enumerate(TARGETS.values()):
        scale = _cos_dec(dec)
        for side in (0, 1):  # west of the field's centre, then east
            tract = 2 * k + side
            ra_min = ra - (1 - side) * TRACT_WIDTH / scale
            dec_min = dec - TRACT_WIDTH / 2
            tracts.append(
                {
                    "skymap": SKYMAP,
                    "id": tract,
                    "region": _box(ra_min, ra_min + TRACT_WIDTH / scale, dec_min, dec_min + TRACT_WIDTH),
                }
            )
            for cell_y in range(PATCHES_PER_SIDE):
                for cell_x in range(PATCHES_PER_SIDE):
                    left = ra_min + cell_x * patch_width / scale
                    bottom = dec_min + cell_y * patch_width
                    patches.append(
                        {
                            "skymap": SKYMAP,
                            "tract": tract,
                            "id": cell_y * PATCHES_PER_SIDE + cell_x,
                            "cell_x": cell_x,
                            "cell_y": cell_y,
                            "region": _box(left, left + patch_width / scale, bottom, bottom + patch_width),
                        }
                    )
    return skymap, tracts, patches


def insert_skymap(registry) -> None:
    """Define the demo skymap's records (the registry records their overlaps for its spatial joins)."""
    skymap, tracts, patches = skymap_records()
    registry.insertDimensionData("skymap", skymap)
    registry.insertDimensionData("tract", *tracts)
    registry.insertDimensionData("patch", *patches)


def insert_instrument(registry, *, detectors: int, nights: tuple[int, ...] | list[int]) -> None:
    """Insert DemoCam itself: the instrument, its physical filters, detectors and nights (``day_obs``).

    A night runs from 15:00 UTC on day_obs to 15:00 UTC the next day (noon at the demo site, UTC-3).
    """
    import astropy.time
    from lsst.daf.butler import Timespan

    def at(night: int, hours: int):
        moment = datetime.strptime(str(night), "%Y%m%d") + timedelta(hours=hours)
        return astropy.time.Time(moment, scale="utc")

    registry.insertDimensionData(
        "instrument",
        {
            "name": INSTRUMENT,
            "visit_max": 2**40,
            "exposure_max": 2**40,
            "detector_max": 1000,
            "visit_system": VISIT_SYSTEM[0],
            "class_name": "lsst_adapter.demo.DemoCam",
        },
    )
    registry.insertDimensionData(
        "physical_filter", *({"instrument": INSTRUMENT, "name": f"DemoCam-{b}", "band": b} for b in BANDS)
    )
    registry.insertDimensionData(
        "detector",
        *(
            {
                "instrument": INSTRUMENT,
                "id": i,
                "full_name": DETECTOR_NAMES[i],
                "raft": DETECTOR_NAMES[i].split("_")[0],
                "name_in_raft": DETECTOR_NAMES[i].split("_")[1],
                "purpose": "SCIENCE",
            }
            for i in range(detectors)
        ),
    )
    registry.insertDimensionData(
        "day_obs",
        *(
            {"instrument": INSTRUMENT, "id": night, "timespan": Timespan(at(night, 15), at(night, 39))}
            for night in nights
        ),
    )


def build_demo_repo(
    root: str | Path,
    *,
    nights: tuple[int, ...] = DEFAULT_NIGHTS,
    science_per_night: int = 12,
    detectors: int = 9,
    seed: int = 2025,
    with_raws: bool = True,
) -> DemoRepoSummary:
    """Create a Butler repo at ``root`` holding the DemoCam instrument, its exposures and raws.

    Refuses to touch a directory that already holds a repo (``butler.yaml``).
    """
    import astropy.time
    from lsst.daf.butler import Butler, CollectionType, DatasetType, Timespan

    root = Path(root)
    if (root / "butler.yaml").exists():
        raise FileExistsError(f"{root} already holds a Butler repo (butler.yaml exists).")
    if not 1 <= detectors <= len(DETECTOR_NAMES):
        raise ValueError(f"detectors must be between 1 and {len(DETECTOR_NAMES)}")
    root.mkdir(parents=True, exist_ok=True)
    Butler.makeRepo(str(root))
    butler = Butler.from_config(str(root), writeable=True)
    registry = butler.registry
    specs = plan_exposures(nights, science_per_night, seed)

    def t(moment: datetime):
        return astropy.time.Time(moment.replace(tzinfo=None), scale="utc")

    with butler.transaction():
        insert_instrument(registry, detectors=detectors, nights=nights)
        registry.insertDimensionData("group", *({"instrument": INSTRUMENT, "name": s.obs_id} for s in specs))
        exposure_rows, visit_rows, definitions, memberships = [], [], [], []
        detector_regions: list[dict[str, Any]] = []
        for s in specs:
            ra, dec = TARGETS.get(s.target, (None, None))
            end = s.start + timedelta(seconds=s.exposure_time)
            span = Timespan(t(s.start), t(end))
            science = s.observation_type == "science"
            exposure_rows.append(
                {
                    "instrument": INSTRUMENT,
                    "id": s.exposure_id,
                    "day_obs": s.day_obs,
                    "group": s.obs_id,
                    "physical_filter": f"DemoCam-{s.band}",
                    "obs_id": s.obs_id,
                    "exposure_time": s.exposure_time,
                    "dark_time": s.exposure_time + 0.5,
                    "observation_type": s.observation_type,
                    "observation_reason": "science" if science else "calibration",
                    "seq_num": s.seq_num,
                    "seq_start": s.seq_num,
                    "seq_end": s.seq_num,
                    "target_name": s.target
                    if science
                    else ("dome_screen" if s.observation_type == "flat" else "closed_dome"),
                    "science_program": "demo-survey" if science else "daily-calibs",
                    "tracking_ra": ra,
                    "tracking_dec": dec,
                    "sky_angle": 0.0 if science else None,
                    "azimuth": 180.0 + (s.seq_num % 40) if science else None,
                    "zenith_angle": 20.0 + (s.seq_num % 25) if science else None,
                    "has_simulated": True,
                    "can_see_sky": science,
                    "timespan": span,
                }
            )
            if science:
                visit_rows.append(
                    {
                        "instrument": INSTRUMENT,
                        "id": s.exposure_id,
                        "day_obs": s.day_obs,
                        "physical_filter": f"DemoCam-{s.band}",
                        "name": s.obs_id,
                        "seq_num": s.seq_num,
                        "exposure_time": s.exposure_time,
                        "target_name": s.target,
                        "observation_reason": "science",
                        "science_program": "demo-survey",
                        "azimuth": 180.0 + (s.seq_num % 40),
                        "zenith_angle": 20.0 + (s.seq_num % 25),
                        "region": _region(ra, dec) if ra is not None and dec is not None else None,
                        "timespan": span,
                    }
                )
                definitions.append({"instrument": INSTRUMENT, "exposure": s.exposure_id, "visit": s.exposure_id})
                if ra is not None and dec is not None:
                    detector_regions.extend(
                        {
                            "instrument": INSTRUMENT,
                            "visit": s.exposure_id,
                            "detector": det,
                            "region": detector_region(ra, dec, det),
                        }
                        for det in range(detectors)
                    )
                memberships.append({"instrument": INSTRUMENT, "visit_system": VISIT_SYSTEM[0], "visit": s.exposure_id})
        registry.insertDimensionData("exposure", *exposure_rows)
        registry.insertDimensionData(
            "visit_system", {"instrument": INSTRUMENT, "id": VISIT_SYSTEM[0], "name": VISIT_SYSTEM[1]}
        )
        if visit_rows:
            registry.insertDimensionData("visit", *visit_rows)
            registry.insertDimensionData("visit_definition", *definitions)
            registry.insertDimensionData("visit_system_membership", *memberships)
        if detector_regions:
            registry.insertDimensionData("visit_detector_region", *detector_regions)
        insert_skymap(registry)

    raws = 0
    if with_raws:
        dataset_type = DatasetType(
            RAW_DATASET_TYPE, ("instrument", "exposure", "detector"), RAW_STORAGE_CLASS, universe=butler.dimensions
        )
        registry.registerDatasetType(dataset_type)
        butler.collections.register(RAW_COLLECTION, CollectionType.RUN)
        for s in specs:
            for det in range(detectors):
                butler.put(
                    raw_content(s, det, seed),
                    dataset_type,
                    {"instrument": INSTRUMENT, "exposure": s.exposure_id, "detector": det},
                    run=RAW_COLLECTION,
                )
                raws += 1
    _analyze(root)
    return DemoRepoSummary(
        root=str(root),
        instrument=INSTRUMENT,
        detectors=detectors,
        exposures=len(specs),
        science_exposures=sum(1 for s in specs if s.observation_type == "science"),
        raws=raws,
        nights=list(nights),
    )


def _analyze(root: Path) -> None:
    """SQLite registries need statistics, or data-ID uploads scan once per row (65 s instead of 0.2 s)."""
    import sqlite3

    db = root / "gen3.sqlite3"
    if db.exists():
        with sqlite3.connect(db) as conn:
            conn.execute("ANALYZE")
