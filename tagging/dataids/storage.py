"""How a set version's data IDs are stored and read back: chunks of typed arrays (``DataIdChunk``).

A version is cut into chunks of at most ``CHUNK_ROWS`` data IDs, each of one instrument. Every
dimension other than the instrument is one array per chunk. On PostgreSQL the chunks are written
with one binary ``COPY`` whose array values are built with numpy (no Python object per data ID);
the arrays are compressed with lz4 where the server has it. On other databases (SQLite, for
``make run``) the chunks are ordinary rows whose arrays are JSON text.

SQL sees one row per data ID through the ``tagging_dataidrow`` view (``DataIdRow``); the readers
here go to the chunks directly, one batch of chunks at a time, so memory stays bounded.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from django.db import connection

from ..models import DATA_ID_COLUMNS, DataIdChunk
from .normalize import ColumnRows

CHUNK_ROWS = 16_384
SQLITE_CHUNK_ROWS = 1_000  # the SQLite view reads each value with json_extract: keep its arrays short
READ_BATCH = 8  # chunks fetched at a time by the readers
# Element types of the array columns: PostgreSQL type oid and numpy big-endian dtype (None: text).
_ELEMENTS = {"bigint": (20, ">i8"), "integer": (23, ">i4"), "text": (25, None)}
ZONE_DIMENSIONS = ("exposure", "visit")
ARRAY_DIMENSIONS = [d for d in DATA_ID_COLUMNS if d != "instrument"]


def _base(name: str) -> str:
    return getattr(DataIdChunk._meta.get_field(name), "base", "text")


def _checked(dimensions: Sequence[str]) -> list[str]:
    """Column names for SQL built here: only ever the fixed DATA_ID_COLUMNS, never user text."""
    unknown = [d for d in dimensions if d not in DATA_ID_COLUMNS]
    if unknown:
        raise ValueError(f"not a data-ID column: {unknown}")
    return list(dimensions)


def columns_from_tuples(dimensions: Sequence[str], rows: Sequence[tuple]) -> ColumnRows:
    """Data IDs given as tuples (in ``dimensions`` order) as columns, grouped by instrument (a stable
    sort: within an instrument the given order is kept)."""
    import numpy as np

    n = len(rows)
    values: list[Sequence[Any]] = list(zip(*rows, strict=True)) if n else [() for _ in dimensions]
    by_name = dict(zip(dimensions, values, strict=True))
    instruments: list[str] = [""]
    codes = np.zeros(n, dtype=np.int64)
    if "instrument" in by_name:
        lookup: dict[str, int] = {}
        codes = np.fromiter((lookup.setdefault(v, len(lookup)) for v in by_name["instrument"]), np.int64, n)
        instruments = list(lookup) or [""]
    arrays = {
        name: np.array(column, dtype=object if _base(name) == "text" else np.int64)
        for name, column in by_name.items()
        if name != "instrument"
    }
    if n and len(instruments) > 1 and bool((np.diff(codes) < 0).any()):
        order = np.argsort(codes, kind="stable")
        codes = codes[order]
        arrays = {name: array[order] for name, array in arrays.items()}
    return ColumnRows(count=n, arrays=arrays, instrument_codes=codes, instruments=instruments)


def _chunks(rows: ColumnRows, size: int) -> Iterator[tuple[int, int, int]]:
    """(seq, start, stop) of each chunk: at most ``size`` data IDs, never across an instrument change."""
    import numpy as np

    bounds = (np.flatnonzero(np.diff(rows.instrument_codes)) + 1).tolist() if rows.count else []
    seq = 0
    for first, last in zip([0, *bounds], [*bounds, rows.count], strict=True):
        for start in range(first, last, size):
            yield seq, start, min(start + size, last)
            seq += 1


def store(version_id: int, dimensions: Sequence[str], rows: ColumnRows) -> int:
    """Write a version's data IDs (already checked and deduplicated) as chunks; returns how many."""
    dims = _checked(dimensions)
    if connection.vendor == "postgresql":
        return _store_copy(version_id, dims, rows)
    has_instrument = "instrument" in dims
    chunks = []
    for seq, start, stop in _chunks(rows, SQLITE_CHUNK_ROWS):
        fields: dict[str, Any] = {
            "version_id": version_id,
            "seq": seq,
            "size": stop - start,
            "instrument": rows.instruments[int(rows.instrument_codes[start])] if has_instrument else None,
        }
        for name in dims:
            if name != "instrument":
                fields[name] = rows.arrays[name][start:stop].tolist()
        for name in ZONE_DIMENSIONS:
            if name in dims:
                fields[f"{name}_min"] = min(fields[name])
                fields[f"{name}_max"] = max(fields[name])
        chunks.append(DataIdChunk(**fields))
    DataIdChunk.objects.bulk_create(chunks, batch_size=100)
    return len(chunks)


def _int_array(values: Any, base: str) -> bytes:
    """A one-dimensional PostgreSQL array of integers in binary form, built with numpy."""
    import numpy as np

    oid, dtype = _ELEMENTS[base]
    info = np.iinfo(np.dtype(dtype).newbyteorder("="))
    if len(values) and (int(values.min()) < info.min or int(values.max()) > info.max):
        raise ValueError(f"a value does not fit a PostgreSQL {base}")
    record = np.empty(len(values), dtype=np.dtype([("len", ">i4"), ("value", dtype)]))
    record["len"] = np.dtype(dtype).itemsize
    record["value"] = values
    return struct.pack(">iiiii", 1, 0, oid, len(values), 1) + record.tobytes()


def _text_array(values: Iterable[str]) -> bytes:
    items = [str(v).encode() for v in values]
    parts = [struct.pack(">iiiii", 1, 0, _ELEMENTS["text"][0], len(items), 1)]
    parts += [struct.pack(">i", len(item)) + item for item in items]
    return b"".join(parts)


def _field(data: bytes | None) -> bytes:
    return b"\xff\xff\xff\xff" if data is None else struct.pack(">i", len(data)) + data


def _store_copy(version_id: int, dims: list[str], rows: ColumnRows) -> int:
    """One binary COPY of all the chunks: a few dozen tuples for a million data IDs."""
    arrays = [d for d in ARRAY_DIMENSIONS if d in dims]
    zones = [d for d in ZONE_DIMENSIONS if d in dims]
    columns = ["version_id", "seq", "size", "instrument", *arrays]
    columns += [f"{d}_{end}" for d in zones for end in ("min", "max")]
    sql = f"COPY {DataIdChunk._meta.db_table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT binary)"
    has_instrument = "instrument" in dims
    count = 0
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        copy.write(b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8)  # signature, flags, header extension length
        for seq, start, stop in _chunks(rows, CHUNK_ROWS):
            instrument = rows.instruments[int(rows.instrument_codes[start])] if has_instrument else None
            parts = [
                struct.pack(">h", len(columns)),
                _field(struct.pack(">q", version_id)),
                _field(struct.pack(">i", seq)),
                _field(struct.pack(">i", stop - start)),
                _field(instrument.encode() if instrument is not None else None),
            ]
            for name in arrays:
                values = rows.arrays[name][start:stop]
                base = _base(name)
                parts.append(_field(_text_array(values) if base == "text" else _int_array(values, base)))
            for name in zones:
                values = rows.arrays[name][start:stop]
                parts += [_field(struct.pack(">q", int(values.min()))), _field(struct.pack(">q", int(values.max())))]
            copy.write(b"".join(parts))
            count += 1
        copy.write(b"\xff\xff")  # end of data
    return count


def iter_chunks(version_id: int, dimensions: Sequence[str]) -> Iterator[dict[str, list[Any]]]:
    """A version's chunks in order, each as ``{dimension: list of values}``, a few chunks per query."""
    dims = _checked(dimensions)
    arrays = [d for d in dims if d != "instrument"]
    seqs = list(DataIdChunk.objects.filter(version_id=version_id).order_by("seq").values_list("seq", flat=True))
    for first in range(0, len(seqs), READ_BATCH):
        batch = seqs[first : first + READ_BATCH]
        fetched = (
            DataIdChunk.objects.filter(version_id=version_id, seq__gte=batch[0], seq__lte=batch[-1])
            .order_by("seq")
            .values_list("size", "instrument", *arrays)
        )
        for size, instrument, *values in fetched:
            chunk = dict(zip(arrays, values, strict=True))
            if "instrument" in dims:
                chunk["instrument"] = [instrument] * size
            yield chunk


def iter_rows(version_id: int, dimensions: Sequence[str]) -> Iterator[tuple]:
    """A version's data IDs in stored order, as tuples in ``dimensions`` order."""
    for chunk in iter_chunks(version_id, dimensions):
        yield from zip(*(chunk[d] for d in dimensions), strict=True)


def read_columns(version_id: int, dimensions: Sequence[str]) -> dict[str, Any]:
    """A version's data IDs in stored order as one numpy array per dimension (int64 for integer
    dimensions, strings otherwise)."""
    import numpy as np

    parts: dict[str, list[Any]] = {d: [] for d in dimensions}
    for chunk in iter_chunks(version_id, dimensions):
        for name in dimensions:
            dtype = str if name == "instrument" or _base(name) == "text" else np.int64
            parts[name].append(np.array(chunk[name], dtype=dtype))
    return {
        name: np.concatenate(chunks)
        if chunks
        else np.array([], dtype=str if name == "instrument" or _base(name) == "text" else np.int64)
        for name, chunks in parts.items()
    }


def versions_containing(instrument: str, *, exposure: int | None = None, visit: int | None = None) -> set[int]:
    """Ids of the set versions holding a data ID with this exposure (or visit) of ``instrument``.
    The zone map (per-chunk min and max) picks the chunks that may hold it; only those are searched."""
    if (exposure is None) == (visit is None):
        raise ValueError("give an exposure or a visit")
    name, value = ("exposure", exposure) if exposure is not None else ("visit", visit)
    if connection.vendor == "postgresql":
        table = DataIdChunk._meta.db_table
        sql = (  # fixed names only
            f"SELECT DISTINCT version_id FROM {table} WHERE instrument = %s AND {name}_min <= %s "  # noqa: S608
            f"AND {name}_max >= %s AND %s = ANY({name})"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [instrument, value, value, value])
            return {row[0] for row in cursor.fetchall()}
    candidates = DataIdChunk.objects.filter(
        instrument=instrument, **{f"{name}_min__lte": value, f"{name}_max__gte": value}
    ).values_list("version_id", name)
    return {version_id for version_id, values in candidates if value in values}
