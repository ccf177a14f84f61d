"""Data IDs against a Butler: dimension groups, known values, queries, TAGGED collections, tables."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
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


def tag_datasets(
    uri: str,
    *,
    dimensions: Sequence[str],
    rows: Sequence[Sequence[Any]],
    dataset_type: str,
    input_collections: Sequence[str],
    collection: str,
    missing_limit: int = 50,
) -> TagResult:
    """Find the datasets of ``dataset_type`` for these data IDs (one query, the data IDs uploaded as a
    table) and associate them with a TAGGED ``collection``. Running it again is harmless."""
    from lsst.daf.butler import CollectionType, MissingDatasetTypeError

    butler = open_butler(uri, writeable=True)
    table = data_id_table(dimensions, rows)
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
    dataset_dims = list(butler.get_dataset_type(dataset_type).dimensions.required)
    positions = [list(dimensions).index(d) for d in dataset_dims if d in dimensions]
    found_keys = {tuple(ref.dataId[dimensions[p]] for p in positions) for ref in refs}
    missing: list[dict[str, Any]] = []
    missing_count = 0
    for row in rows:
        key = tuple(row[p] for p in positions)
        if key not in found_keys:
            missing_count += 1
            if len(missing) < missing_limit:
                missing.append(dict(zip(dimensions, row, strict=True)))
    return TagResult(collection=collection, found=len(refs), missing_count=missing_count, missing=missing)
