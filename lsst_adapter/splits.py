"""Registry answers that cut a step into groups: the tracts its data overlap, its detectors.

Tracts come from the registry's spatial join: the data IDs of ``(tract[, patch])`` of a skymap that the
visits selected by the step's ``where`` overlap (the visits are joined explicitly: an exposure has no region,
so a query of tracts constrained only by exposures would pair every tract with every exposure). When the
``where`` names detectors, the registry joins the detectors' own regions (``visit_detector_region``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .estimate import DataIdTable, TooManyDataIds, _astropy
from .registry import RepoError, open_butler

__all__ = ["distinct_detectors", "overlapping_tracts", "skymap_names"]


def _constrained(query, where: str, default_instrument: str | None):
    if default_instrument and not re.search(r"\binstrument\b", where):
        query = query.where(instrument=default_instrument)
    if where.strip():
        query = query.where(where)
    return query


def skymap_names(butler_config: str) -> list[str]:
    """The skymaps the repo defines."""
    butler = open_butler(butler_config)
    return sorted(record.name for record in butler.query_dimension_records("skymap", limit=None, explain=False))


def overlapping_tracts(
    butler_config: str,
    where: str,
    *,
    skymap: str,
    with_patches: bool = False,
    default_instrument: str | None = None,
    tables: Sequence[DataIdTable] = (),
    limit: int = 1_000_000,
) -> dict[int, list[int]]:
    """Tract -> its patches (sorted; empty unless ``with_patches``) of ``skymap`` that the visits selected by
    ``where`` (and the data-ID tables) overlap. Raises ``RepoError`` for an unknown skymap or a refused query."""
    from lsst.daf.butler import InvalidQueryError

    known = skymap_names(butler_config)
    if skymap not in known:
        raise RepoError(f"The repo has no skymap {skymap!r} (it has: {', '.join(known) or 'none'}).")
    if any(not t.rows for t in tables):
        return {}
    butler = open_butler(butler_config)
    dims = ["skymap", "tract", *(["patch"] if with_patches else [])]
    found: dict[int, set[int]] = {}
    rows = 0
    try:
        with butler.query() as query:
            for table in tables:
                query = query.join_data_coordinate_table(_astropy(table))
            query = query.join_dimensions(["visit", *dims])
            results = _constrained(query.data_ids(dims), where, default_instrument).where(skymap=skymap)
            for data_id in results.limit(limit + 1):
                rows += 1
                patches = found.setdefault(int(data_id["tract"]), set())
                if with_patches:
                    patches.add(int(data_id["patch"]))
    except InvalidQueryError as exc:
        raise RepoError(f"The Butler refused the query: {exc}") from exc
    if rows > limit:
        raise TooManyDataIds(f"more than {limit:,} tracts and patches")
    return {tract: sorted(patches) for tract, patches in sorted(found.items())}


def distinct_detectors(
    butler_config: str,
    where: str,
    *,
    default_instrument: str | None = None,
    tables: Sequence[DataIdTable] = (),
) -> list[tuple[str, int]]:
    """(instrument, detector) pairs the ``where`` (and the data-ID tables) select, sorted."""
    from lsst.daf.butler import InvalidQueryError

    if any(not t.rows for t in tables):
        return []
    butler = open_butler(butler_config)
    try:
        with butler.query() as query:
            for table in tables:
                query = query.join_data_coordinate_table(_astropy(table))
            results = _constrained(query.data_ids(["instrument", "detector"]), where, default_instrument)
            return sorted({(str(d["instrument"]), int(d["detector"])) for d in results})
    except InvalidQueryError as exc:
        raise RepoError(f"The Butler refused the query: {exc}") from exc
