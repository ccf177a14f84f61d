"""Plain helpers of the DataID-set tests: demo-repo ids and "nothing was stored" checks."""

from __future__ import annotations

from typing import Any

from tagging.models import DataIdRow, DataIdSet, DataIdSetVersion

NIGHT = 20251121
NIGHT2 = 20251122


def exposure_id(seq: int, day_obs: int = NIGHT) -> int:
    """Exposure ids of the demo repo: day_obs * 100000 + seq_num."""
    return day_obs * 100_000 + seq


def ids(seqs, detectors, day_obs: int = NIGHT) -> list[dict[str, Any]]:
    """Data IDs (instrument, exposure, detector) for every pair of sequence number and detector."""
    return [
        {"instrument": "DemoCam", "exposure": exposure_id(s, day_obs), "detector": d} for s in seqs for d in detectors
    ]


def stored_rows(version: DataIdSetVersion) -> set[tuple]:
    return set(version.rows.values_list(*version.dimensions))


def assert_nothing_stored() -> None:
    assert DataIdSet.objects.count() == 0
    assert DataIdSetVersion.objects.count() == 0
    assert DataIdRow.objects.count() == 0


def pairs(version: DataIdSetVersion) -> set[tuple[int, int]]:
    """The (exposure, detector) pairs stored in a version of dimensions (instrument, exposure, detector)."""
    assert sorted(version.dimensions) == ["detector", "exposure", "instrument"], version.dimensions
    return set(version.rows.values_list("exposure", "detector"))


def expected_pairs(seqs, detectors, day_obs: int = NIGHT) -> set[tuple[int, int]]:
    return {(exposure_id(s, day_obs), d) for s in seqs for d in detectors}
