"""Data IDs against a Butler: dimension groups, known values, queries, TAGGED collections, tables."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .registry import RepoError, open_butler

INTEGER_DIMENSIONS = {"exposure", "visit", "detector", "day_obs", "tract", "patch", "visit_system", "group_id"}


class DimensionError(ValueError):
    """Names that are not dimensions of the repo's universe, or an incomplete group."""


def required_dimensions(uri: str, names: Iterable[str]) -> list[str]:
    """The required dimensions of the group spanned by ``names``, in the universe's order."""
    butler = open_butler(uri)
    names = list(names)
    unknown = [n for n in names if n not in butler.dimensions.getStaticDimensions().names]
    if unknown:
        raise DimensionError(f"not a dimension of this repo: {', '.join(unknown)}")
    return list(butler.dimensions.conform(names).required)


def implied_dimensions(uri: str, names: Iterable[str]) -> list[str]:
    butler = open_butler(uri)
    return list(butler.dimensions.conform(list(names)).implied)


def is_dimension(uri: str, name: str) -> bool:
    return name in open_butler(uri).dimensions.getStaticDimensions().names


def dimension_keys(uri: str, element: str) -> set[tuple]:
    """All primary keys of ``element`` in the registry, as tuples in required-dimension order."""
    butler = open_butler(uri)
    required = list(butler.dimensions[element].required.names)
    keys = set()
    for record in butler.query_dimension_records(element, limit=None):
        data_id = record.dataId
        keys.add(tuple(data_id[name] for name in required))
    return keys


def any_exist(uri: str, element: str, instrument: str, ids: Sequence[int], batch: int = 10_000) -> bool:
    """Whether the registry holds any of these ``exposure``/``visit``/``detector`` ids for ``instrument``
    (a few bound ``IN`` queries; stops at the first batch with a hit)."""
    if element not in ("exposure", "visit", "detector"):
        raise ValueError(f"not an id element: {element}")
    butler = open_butler(uri)
    for start in range(0, len(ids), batch):
        part = [int(i) for i in ids[start : start + batch]]
        records = butler.query_dimension_records(
            element, where=f"{element} IN (ids)", bind={"ids": part}, instrument=instrument, explain=False, limit=1
        )
        if records:
            return True
    return False


def visit_definitions(uri: str) -> set[tuple]:
    """(instrument, exposure, visit) of every exposure of every visit: the registry's ``visit_definition``."""
    butler = open_butler(uri)
    return {
        (record.dataId["instrument"], record.dataId["exposure"], record.dataId["visit"])
        for record in butler.query_dimension_records("visit_definition", limit=None)
    }


def query_data_ids(
    uri: str,
    dimensions: Sequence[str],
    where: str,
    *,
    bind: dict[str, Any] | None = None,
    default_instrument: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Data IDs of ``dimensions`` matching a Butler ``where`` expression, as plain dicts of required keys.

    ``default_instrument`` constrains the query when the expression names no instrument
    (the Butler refuses expressions on exposure fields without one)."""
    from lsst.daf.butler import InvalidQueryError

    butler = open_butler(uri)
    required = required_dimensions(uri, dimensions)
    try:
        with butler.query() as query:
            results = query.data_ids(required)
            if default_instrument and not re.search(r"\binstrument\b", where):
                results = results.where(instrument=default_instrument)
            results = results.where(where, bind=bind or {})
            for data_id in results:
                yield {name: data_id[name] for name in required}
    except InvalidQueryError as exc:
        raise RepoError(f"The Butler refused the query: {exc}") from exc


@dataclass
class TagResult:
    collection: str
    found: int
    missing_count: int
    missing: list[dict[str, Any]] = field(default_factory=list)


def data_id_table(dimensions: Sequence[str], rows: Iterable[Sequence[Any]]):
    """An astropy Table of data IDs with one column per dimension (what ``--data-id-table`` reads)."""
    from astropy.table import Table

    columns: list[list[Any]] = [[] for _ in dimensions]
    for row in rows:
        for i, value in enumerate(row):
            columns[i].append(value)
    table = Table()
    for name, values in zip(dimensions, columns, strict=True):
        table[name] = values
    return table


def data_id_table_from_columns(dimensions: Sequence[str], columns: Mapping[str, Any]):
    """The same table from one array (or sequence) per dimension, without a Python loop over rows."""
    import numpy as np
    from astropy.table import Table

    table = Table()
    for name in dimensions:
        table[name] = np.asarray(columns[name])
    return table


def _pack_keys(parts: list[Any]) -> Any | None:
    """One int64 per row from int64 code columns (mixed radix), or None if they need more than 62 bits."""
    import numpy as np

    lows = [int(p.min()) if len(p) else 0 for p in parts]
    widths = [max(1, (int(p.max()) - lo).bit_length()) if len(p) else 1 for p, lo in zip(parts, lows, strict=True)]
    if sum(widths) > 62:
        return None
    key = np.zeros(len(parts[0]), dtype=np.int64)
    for part, lo, width in zip(parts, lows, widths, strict=True):
        key <<= width
        key |= part - lo
    return key


def _missing_mask(row_columns: list[Any], found_columns: list[Any]) -> Any:
    """True for each row whose key (one value per column) is not among the found keys; vectorised."""
    import numpy as np

    n = len(row_columns[0])
    row_parts, found_parts = [], []
    for rows, found in zip(row_columns, found_columns, strict=True):
        if rows.dtype.kind in "iu" and (len(found) == 0 or found.dtype.kind in "iu"):
            row_parts.append(rows.astype(np.int64))
            found_parts.append(found.astype(np.int64))
        else:
            values = np.concatenate([rows.astype(str), found.astype(str)])
            codes = np.unique(values, return_inverse=True)[1].astype(np.int64)
            row_parts.append(codes[:n])
            found_parts.append(codes[n:])
    both = _pack_keys([np.concatenate([r, f]) for r, f in zip(row_parts, found_parts, strict=True)])
    if both is None:  # too wide to pack: compare tuples
        found_keys = set(zip(*(f.tolist() for f in found_parts), strict=True))
        return np.fromiter(
            (key not in found_keys for key in zip(*(r.tolist() for r in row_parts), strict=True)), dtype=bool, count=n
        )
    return ~np.isin(both[:n], both[n:])


def tag_datasets(
    uri: str,
    *,
    dimensions: Sequence[str],
    rows: Sequence[Sequence[Any]] | None = None,
    columns: Mapping[str, Any] | None = None,
    dataset_type: str,
    input_collections: Sequence[str],
    collection: str,
    missing_limit: int = 50,
) -> TagResult:
    """Find the datasets of ``dataset_type`` for these data IDs (one query, the data IDs uploaded as a
    table) and associate them with a TAGGED ``collection``. Running it again is harmless.

    The data IDs come as ``rows`` (tuples in ``dimensions`` order) or, faster, as ``columns`` (one
    array per dimension: int64 for integer dimensions, strings otherwise)."""
    import numpy as np
    from lsst.daf.butler import CollectionType, MissingDatasetTypeError

    if columns is None:
        if rows is None:
            raise ValueError("give rows or columns")
        table = data_id_table(dimensions, rows)
        columns = {name: np.asarray(table[name]) for name in dimensions}
    else:
        table = data_id_table_from_columns(dimensions, columns)
    butler = open_butler(uri, writeable=True)
    try:
        with butler.query() as query:
            refs = list(
                query.join_data_coordinate_table(table).datasets(
                    dataset_type, collections=list(input_collections), find_first=True
                )
            )
    except MissingDatasetTypeError as exc:
        raise RepoError(f"Dataset type {dataset_type!r} is not registered in this repo.") from exc
    except Exception as exc:
        raise RepoError(f"The Butler could not resolve the data IDs: {exc}") from exc
    try:
        butler.collections.register(collection, CollectionType.TAGGED)
        with butler.transaction():
            butler.registry.associate(collection, refs)
    except Exception as exc:  # e.g. the name is taken by a RUN collection; the caller records the message
        raise RepoError(f"Could not fill the TAGGED collection {collection!r}: {exc}") from exc
    # Data IDs with no dataset: compared on the dimensions the set shares with the dataset type.
    dataset_dims = list(butler.get_dataset_type(dataset_type).dimensions.required)
    key_dims = [d for d in dataset_dims if d in dimensions]
    n = len(table)
    if not key_dims or n == 0:
        is_missing = np.full(n, not refs, dtype=bool)
    else:
        row_columns = [np.asarray(columns[d]) for d in key_dims]
        # required_values: the ref's values in dataset_dims order, one attribute read per ref.
        found = [ref.dataId.required_values for ref in refs]
        by_dim = dict(zip(dataset_dims, zip(*found, strict=True), strict=True)) if found else {}
        found_columns = [np.asarray(by_dim.get(d, ())) for d in key_dims]
        is_missing = _missing_mask(row_columns, found_columns)
    first = np.flatnonzero(is_missing)[:missing_limit]
    listed = {name: np.asarray(columns[name])[first].tolist() for name in dimensions}
    missing = [{name: listed[name][i] for name in dimensions} for i in range(len(first))]
    return TagResult(collection=collection, found=len(refs), missing_count=int(is_missing.sum()), missing=missing)
