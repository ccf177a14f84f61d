"""A vectorised path for the common large upload: a CSV file whose columns are primary keys.

``check_csv_fast`` handles files whose header names only ``instrument`` (optional when the repo
has a default instrument), ``exposure``, ``visit`` and ``detector``. It reads the file with
``pyarrow.csv`` (typed columns, in parallel), removes duplicates by sorting packed int64 keys, and
checks every distinct data ID against the mirror tables with numpy: the instrument is in the
registry, each exposure/visit exists for its instrument in the mirror, each detector exists for
its instrument. The rows come back as columns (``ColumnRows``), sorted, for a binary ``COPY``.

Values the repo does not hold are reported here, in the general path's words, with their line
(header = line 1) and key: the first 50 problems and the total. The mirror is re-read once first, in
case it is behind the registry; visits not in the mirror (several exposures each) are looked up in
the registry. So a bad file is read once: strict mode refuses it after this one pass, and "drop
invalid" keeps the good rows and reports the others.

It gives up (returns ``None``) on anything it cannot prove is read exactly as the general path
reads it: another column, a header with quotes, a value pyarrow will not parse as a decimal integer
(empty, ``NA``, ``1.0``, ``1_000``, text), a hexadecimal-looking value, a row with the wrong number
of cells, a blank line, bytes that are not UTF-8, or an instrument value with surrounding spaces. The caller
then rewinds the stream and runs the general per-row path (``DataIdChecker.run``), which reports
each problem with its line and key. What is stored is the same either way.
"""

from __future__ import annotations

import io
import logging
import struct
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv  # at import time, not on the first upload of a process
from django.db import connection

from ..models import Detector, Exposure
from .normalize import CheckResult, ColumnRows, DataIdChecker

log = logging.getLogger(__name__)

# Columns the fast path reads, in the order rows are sorted by (after the instrument).
INTEGER_COLUMNS = ("exposure", "visit", "detector")
FAST_COLUMNS = {"instrument", *INTEGER_COLUMNS}
BLOCK_SIZE = 1 << 22  # pyarrow parses blocks of 4 MiB (in parallel)
DENSE_KEYS_MAX = 1 << 26  # dedupe with a table of this many booleans at most (64 MiB), else by sorting


class _Watch(io.RawIOBase):
    """Reads through to a binary stream, noting whether ``0x``/``0X`` occurs: pyarrow parses
    ``0x10`` as 16 where Python's ``int()`` (the general path) refuses it."""

    def __init__(self, stream: IO[bytes]):
        self._stream = stream
        self._last = b""
        self.hex_like = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._stream.read(len(buffer))
        if data and not self.hex_like:
            # ``x`` is rare in these files, and memchr finds it fast: look for ``0x`` only where there is one.
            across = self._last == b"0" and data[:1] in (b"x", b"X")
            if across or ((b"x" in data or b"X" in data) and (b"0x" in data or b"0X" in data)):
                self.hex_like = True
            self._last = data[-1:]
        buffer[: len(data)] = data
        return len(data)


def _header(stream: IO[bytes]) -> list[str] | None:
    line = stream.readline(64 * 1024)
    if not line.endswith(b"\n") or b'"' in line:
        return None
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    names = [name.strip() for name in text.rstrip("\r\n").split(",")]
    if len(set(names)) != len(names) or not set(names) <= FAST_COLUMNS or set(names) <= {"instrument"}:
        return None
    if {"exposure", "visit"} <= set(names):
        return None  # both in one data ID: rare, left to the general path
    return names


def _unique_rows(columns: list[Any]) -> tuple[list[Any], int]:
    """Distinct rows of equal-length int64 columns, sorted by the columns in order; and how many rows
    were duplicates. Packs the columns into one int64 key when their ranges fit in 62 bits."""

    n = len(columns[0])
    lows = [int(c.min()) for c in columns]
    spans = [int(c.max()) - lo + 1 for c, lo in zip(columns, lows, strict=True)]
    total = 1
    for span in spans:
        total *= span
    if total <= DENSE_KEYS_MAX:
        # Few possible keys (a few months of exposures x detectors): mark each in a table and read the
        # marks back in order, a counting sort in two passes instead of a comparison sort.
        key = np.zeros(n, dtype=np.int64)
        for column, lo, span in zip(columns, lows, spans, strict=True):
            if span > 1:  # a constant column (one instrument) adds nothing to the key
                key *= span
                key += column - lo
        seen = np.zeros(total, dtype=bool)
        seen[key] = True
        key = np.flatnonzero(seen)
        del seen
        out = []
        for column, lo, span in zip(reversed(columns), reversed(lows), reversed(spans), strict=True):
            if span == 1:
                out.append(np.full(len(key), lo, dtype=column.dtype))
                continue
            key, rest = np.divmod(key, span)
            out.append(rest + lo)
        return list(reversed(out)), n - len(out[0])
    bits = [max(1, (span - 1).bit_length()) for span in spans]
    if sum(bits) <= 62:
        key = np.zeros(n, dtype=np.int64)
        for column, lo, width in zip(columns, lows, bits, strict=True):
            key <<= width
            key |= column - lo
        key.sort()
        keep = np.empty(n, dtype=bool)
        keep[0] = True
        np.not_equal(key[1:], key[:-1], out=keep[1:])
        key = key[keep]
        out = []
        for lo, width in zip(reversed(lows), reversed(bits), strict=True):
            out.append((key & ((1 << width) - 1)) + lo)
            key >>= width
        return list(reversed(out)), n - len(out[0])
    order = np.lexsort(columns[::-1])
    ordered = [c[order] for c in columns]
    keep = np.empty(n, dtype=bool)
    keep[0] = True
    keep[1:] = False
    for column in ordered:
        keep[1:] |= column[1:] != column[:-1]
    return [c[keep] for c in ordered], n - int(keep.sum())


def _mirror_ids(repo, instrument: str, column: str, lo: int, hi: int) -> Any:
    """The ids of ``column`` (exposure, visit or detector) the mirror holds for ``instrument`` in [lo, hi]."""

    if connection.vendor == "postgresql":
        # One sorted bigint[] value in one binary COPY tuple, read straight into numpy: no Python object
        # per id, and not one COPY message per id either.
        model, field = (Detector, "detector_id") if column == "detector" else (Exposure, f"{column}_id")
        sql = (  # fixed names only
            f"COPY (SELECT array_agg({field}::bigint ORDER BY {field}) FROM {model._meta.db_table} "  # noqa: S608
            f"WHERE repo_id = %s AND instrument = %s AND {field} BETWEEN %s AND %s) TO STDOUT WITH (FORMAT binary)"
        )
        buffer = bytearray()
        with connection.cursor() as cursor, cursor.cursor.copy(sql, [repo.pk, instrument, lo, hi]) as copy:
            for block in copy:
                buffer += block
        # 19-byte header; the tuple: field count (int16), length (int32: -1 for NULL, no rows), then the
        # array: ndim, flags, element type, size, lower bound (int32 each), elements (int32 length, int64).
        (length,) = struct.unpack_from(">i", buffer, 21)
        if length < 0:
            return np.array([], dtype=np.int64)
        (ndim,) = struct.unpack_from(">i", buffer, 25)
        if ndim == 0:
            return np.array([], dtype=np.int64)
        (size,) = struct.unpack_from(">i", buffer, 37)
        elements = np.frombuffer(buffer, dtype=np.dtype([("len", ">i4"), ("value", ">i8")]), count=size, offset=45)
        return elements["value"].astype(np.int64)
    values: Any
    if column == "detector":
        values = Detector.objects.filter(
            repo=repo, instrument=instrument, detector_id__gte=lo, detector_id__lte=hi
        ).values_list("detector_id", flat=True)
    else:
        field = f"{column}_id"
        values = Exposure.objects.filter(
            repo=repo, instrument=instrument, **{f"{field}__gte": lo, f"{field}__lte": hi}
        ).values_list(field, flat=True)
    return np.fromiter(values.iterator(chunk_size=50_000), dtype=np.int64)


def check_csv_fast(stream: IO[bytes], checker: DataIdChecker) -> CheckResult | None:
    """Check a CSV stream of primary keys; ``None`` when the general path must do it (see the module
    docstring), and then the caller rewinds the stream."""
    names = _header(stream)
    if names is None:
        return None
    repo = checker.repo
    if "instrument" not in names and not repo.default_instrument:
        return None
    from lsst_adapter.dataids import DimensionError, required_dimensions

    dimensions = sorted({*names, "instrument"})
    try:
        required = required_dimensions(checker.uri, dimensions)
        if checker.declared and required_dimensions(checker.uri, checker.declared) != required:
            return None
    except DimensionError:
        return None
    if sorted(required) != dimensions:
        return None  # the columns do not make a dimension group by themselves (implied values, ...)

    watch = _Watch(stream)
    try:
        table = pacsv.read_csv(
            io.BufferedReader(watch, 1 << 20),
            read_options=pacsv.ReadOptions(column_names=names, block_size=BLOCK_SIZE),
            # Blank lines are not skipped: they make the parse fail (wrong number of cells) or a value null, and
            # the general path takes the file. So row i is always line i + 2, as problems report it.
            parse_options=pacsv.ParseOptions(newlines_in_values=False, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types={
                    n: (pa.dictionary(pa.int32(), pa.string()) if n == "instrument" else pa.int64()) for n in names
                },
                null_values=[""],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                check_utf8=True,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError, OSError) as exc:
        log.debug("CSV fast path: %s", exc)
        return None
    if watch.hex_like or table.num_rows == 0 or any(table.column(n).null_count for n in names):
        return None

    rows_read = table.num_rows
    if "instrument" in names:
        # Read as a dictionary column: one small dictionary and an int32 index per row, no string per row.
        encoded = table.column("instrument").unify_dictionaries()
        instruments = [str(v) for v in encoded.chunk(0).dictionary.to_pylist()]
        codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in encoded.chunks]).astype(np.int64)
    else:
        instruments = [repo.default_instrument]
        codes = np.zeros(rows_read, dtype=np.int64)
    if any(not i or i != i.strip() for i in instruments):
        return None
    integer_names = [n for n in INTEGER_COLUMNS if n in names]
    columns = [table.column(n).to_numpy() for n in integer_names]
    del table

    # Existence of every value, on the rows as read (so a problem has its line), one instrument at a time.
    missing = _missing(checker, instruments, codes, integer_names, columns)
    if _mirror_behind(checker, instruments, codes, integer_names, columns, missing) and checker._resync_once():
        # The registry holds values the mirror does not: read it again, once, and check again.
        missing = _missing(checker, instruments, codes, integer_names, columns)
    bad = np.zeros(rows_read, dtype=bool)
    for mask in missing.values():
        if mask is not None:
            bad |= mask
    problems = int(bad.sum())
    result = CheckResult(dimensions=list(required), rows=[], rows_read=rows_read)
    checker.required = list(required)
    if problems:
        _report(result, bad, missing, instruments, codes, dict(zip(integer_names, columns, strict=True)))
        if not checker.drop_invalid:
            return result  # strict: refused after this one reading of the file
        keep = ~bad
        codes = codes[keep]
        columns = [c[keep] for c in columns]
        if not len(codes):
            return result
    distinct, duplicates = _unique_rows([codes, *columns])
    codes, columns = distinct[0], distinct[1:]
    count = len(codes)
    result.duplicates = duplicates
    result.columns = ColumnRows(
        count=count,
        arrays=dict(zip(integer_names, columns, strict=True)),
        instrument_codes=codes,
        instruments=instruments,
    )
    return result


LOOKUP_TABLE_MAX = 1 << 25  # ids spanning at most this range are checked with a lookup table (32 MiB at most)


def _absent(known: Any, values: Any, lo: int, hi: int) -> Any:
    """Which ``values`` (all in [lo, hi]) are not in ``known``: one lookup each in a table over
    [lo, hi] when that range is modest (exposure ids of a few months are), else a binary search each."""

    if hi - lo < LOOKUP_TABLE_MAX:
        table = np.ones(hi - lo + 1, dtype=bool)
        table[known[(known >= lo) & (known <= hi)] - lo] = False
        return table[values - lo]
    known = np.sort(known)
    if not len(known):
        return np.ones(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(known, values), len(known) - 1)
    return known[at] != values


def _missing(checker: DataIdChecker, instruments: list[str], codes: Any, names: list[str], columns: list[Any]):
    """Per column (and ``instrument``), a mask of the rows whose value the repo does not hold (None: all held)."""

    n = len(codes)
    out: dict[str, Any] = {name: None for name in [*names, "instrument"]}

    def mark(name: str, where: Any, mask: Any) -> None:
        if mask.any():
            if out[name] is None:
                out[name] = np.zeros(n, dtype=bool)
            out[name][where] = mask

    for code, instrument in enumerate(instruments):
        where = slice(None) if len(instruments) == 1 else np.flatnonzero(codes == code)
        # The mirror's detectors were copied from the registry: an instrument with detectors there is in
        # the registry (no registry query needed); any other is looked up in the registry itself.
        known_instrument = Detector.objects.filter(repo=checker.repo, instrument=instrument).exists() or (
            (instrument,) in checker._known_keys("instrument")
        )
        if not known_instrument:
            mark("instrument", where, np.ones(n if isinstance(where, slice) else len(where), dtype=bool))
        for name, column in zip(names, columns, strict=True):
            values = column[where]
            if not len(values):
                continue
            lo, hi = int(values.min()), int(values.max())
            absent = _absent(_mirror_ids(checker.repo, instrument, name, lo, hi), values, lo, hi)
            if name == "visit" and absent.any() and known_instrument:
                # Visits of several exposures are not in the mirror: ask the registry for those.
                registry = np.array(sorted(v for i, v in checker._known_keys("visit") if i == instrument), np.int64)
                absent &= _absent(registry, values, lo, hi)
            mark(name, where, absent)
    return out


def _mirror_behind(checker: DataIdChecker, instruments, codes, names, columns, missing) -> bool:
    """Whether the registry holds any exposure or visit that the mirror lacks. Asked for the missing
    values only (a few bound queries), so a file with unknown ids is refused without re-reading the
    whole registry into the mirror, which takes a while for a large repo."""
    from lsst_adapter.dataids import any_exist

    for name, column in zip(names, columns, strict=True):
        mask = missing.get(name) if name in ("exposure", "visit") else None
        if mask is None or not mask.any():
            continue
        for code, instrument in enumerate(instruments):
            values = np.unique(column[mask & (codes == code)])
            if len(values) and any_exist(checker.uri, name, instrument, values.tolist()):
                return True
    return False


def _report(result: CheckResult, bad: Any, missing: dict[str, Any], instruments, codes, columns) -> None:
    """The problems of the bad rows, as the general path words them: the first ``ERROR_SAMPLE`` with
    their line (header is line 1) and key, and the total."""

    from .normalize import ERROR_SAMPLE, Problem

    result.rows_invalid = int(bad.sum())
    result.error_total = sum(int(m.sum()) for m in missing.values() if m is not None)
    order = [n for n in ("exposure", "detector", "visit", "instrument") if missing.get(n) is not None]
    for row in np.flatnonzero(bad).tolist():
        instrument = instruments[int(codes[row])]
        for name in order:
            if not missing[name][row]:
                continue
            if name == "instrument":
                message = f"instrument {instrument!r} is not in this repo"
            else:
                message = f"{name} {int(columns[name][row])} does not exist for instrument {instrument!r}"
            result.errors.append(Problem(f"line {row + 2}", name, message, ordinal=row + 1))
        if len(result.errors) >= ERROR_SAMPLE:
            break
    del result.errors[ERROR_SAMPLE:]
