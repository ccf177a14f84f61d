"""Limits on what a reader of user input takes, checked while it streams (before anything is built).

Every reader of uploaded files and request bodies (DataID sets, tag-table rows, metric ingest, exposure-log
imports, campaign YAML, JSON bodies, selection recipes) reads through this module, so one hostile input
costs the server a bounded amount of memory and time, and a limit passed is a 400 that names the limit,
its setting and where in the input it was passed.

- ``JsonLimiter`` scans JSON bytes as they stream, before a parser sees them: nesting depth, string length,
  elements (values and keys) and bytes of one row (one item of the list of rows) or of the whole document.
  It counts brackets outside strings with numpy, a few operations per 64 kB block, so it costs little next
  to the parse. It exists because ijson's C backend holds memory quadratic in the nesting depth (200 kB
  of ``[`` took 23 GB) and Python's ``json`` module recurses (a deep document is a ``RecursionError``).
- ``limited_stream`` wraps a binary stream: it counts the decoded bytes and feeds them to a limiter.
- ``json_loads`` reads one small JSON document whole, after the scan: NaN and Infinity are refused.
- ``yaml_load`` reads YAML with ``LimitedSafeLoader``: no aliases (a few hundred bytes of nested aliases
  expand to gigabytes), no duplicate keys, depth, node count, scalar and expanded size limits.
- ``decompressed_path`` undoes gzip/bzip2/xz around an uploaded table while counting, so a small file
  that expands past the upload limit is refused after reading at most the limit.
- ``check_int64`` keeps integers within PostgreSQL's bigint.

Settings (environment, see README): ``CM_INPUT_MAX_DEPTH``, ``CM_INPUT_MAX_STRING_BYTES``,
``CM_INPUT_MAX_ELEMENTS``, ``CM_INPUT_MAX_ROW_ELEMENTS``, ``CM_INPUT_MAX_ROW_BYTES``, ``CM_UPLOAD_MAX_ROWS``,
and the size limits of each reader (``CM_REQUEST_MAX_BYTES``, ``CM_YAML_MAX_BYTES``,
``CM_DATAID_UPLOAD_MAX_BYTES``).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
from django.conf import settings

from .errors import InputError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Limits:
    """What one reader accepts. ``row_*`` apply to one row of a streamed list of rows; a document read
    whole is bounded by ``max_elements``. ``*_setting`` name the setting for messages."""

    max_bytes: int
    bytes_setting: str
    max_depth: int
    max_string: int
    max_elements: int
    max_row_elements: int
    max_row_bytes: int


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def limits(max_bytes: int | None = None, bytes_setting: str = "CM_REQUEST_MAX_BYTES") -> Limits:
    """The limits in force (read from settings on each call, so tests can override them)."""
    return Limits(
        max_bytes=max_bytes if max_bytes is not None else _setting("DATA_UPLOAD_MAX_MEMORY_SIZE", 5 * 1024 * 1024),
        bytes_setting=bytes_setting,
        max_depth=_setting("CM_INPUT_MAX_DEPTH", 32),
        max_string=_setting("CM_INPUT_MAX_STRING_BYTES", 64 * 1024),
        max_elements=_setting("CM_INPUT_MAX_ELEMENTS", 1_000_000),
        max_row_elements=_setting("CM_INPUT_MAX_ROW_ELEMENTS", 10_000),
        max_row_bytes=_setting("CM_INPUT_MAX_ROW_BYTES", 1024 * 1024),
    )


def request_limits() -> Limits:
    return limits(_setting("DATA_UPLOAD_MAX_MEMORY_SIZE", 5 * 1024 * 1024), "CM_REQUEST_MAX_BYTES")


def upload_limits() -> Limits:
    return limits(_setting("CM_DATAID_UPLOAD_MAX_BYTES", 512 * 1024 * 1024), "CM_DATAID_UPLOAD_MAX_BYTES")


def yaml_limits() -> Limits:
    return limits(_setting("CM_YAML_MAX_BYTES", 1024 * 1024), "CM_YAML_MAX_BYTES")


def import_limits() -> Limits:
    """Files read whole (an exposure-log export is imported all or nothing)."""
    return limits(_setting("CM_IMPORT_MAX_BYTES", 64 * 1024 * 1024), "CM_IMPORT_MAX_BYTES")


def upload_max_rows() -> int:
    return _setting("CM_UPLOAD_MAX_ROWS", 1_000_000)


_KIND_SETTING = {
    "depth": "CM_INPUT_MAX_DEPTH",
    "string": "CM_INPUT_MAX_STRING_BYTES",
    "elements": "CM_INPUT_MAX_ELEMENTS",
    "row_elements": "CM_INPUT_MAX_ROW_ELEMENTS",
    "row_bytes": "CM_INPUT_MAX_ROW_BYTES",
    "rows": "CM_UPLOAD_MAX_ROWS",
}


class LimitExceeded(InputError):
    """An input passed one of the limits. ``kind`` is depth, string, elements, row_elements, row_bytes,
    bytes, rows, alias or duplicate_key; ``where`` says where (line, byte, index or path)."""

    def __init__(self, kind: str, description: str, *, where: str, limit: int | None = None, setting: str = ""):
        setting = setting or _KIND_SETTING.get(kind, "")
        bound = f" ({setting} = {limit:,})" if limit is not None and setting else ""
        message = f"{where}: {description}{bound}." if where else f"{description}{bound}."
        super().__init__(message, [{"where": where, "key": "", "message": f"{description}{bound}"}], 1)
        self.kind = kind
        self.where = where
        self.description = description
        self.limit = limit
        self.setting = setting
        self.reason = f"{description}{bound}"


# --- JSON ------------------------------------------------------------------------------------------------

_OPEN, _CLOSE, _COMMA, _COLON, _QUOTE, _BACKSLASH = 1, 2, 3, 4, 5, 6
_KIND = np.zeros(256, dtype=np.uint8)
for _c, _k in ((b"[", _OPEN), (b"{", _OPEN), (b"]", _CLOSE), (b"}", _CLOSE), (b",", _COMMA), (b":", _COLON)):
    _KIND[_c[0]] = _k
_KIND[ord('"')] = _QUOTE
_KIND[ord("\\")] = _BACKSLASH


class JsonLimiter:
    """Checks JSON bytes block by block as they stream, before a parser builds anything from them.

    ``rows_at`` is the depth of the list whose items are rows (1: a top-level list; 2: ``{"data_ids": [...]}``),
    or 0 when the whole document is read at once; row limits apply to each item of that list and element
    limits to one row (or to the document). The scan follows string boundaries exactly for valid JSON; on
    invalid JSON the parser fails at the first bad byte anyway, which it only sees after this scan."""

    def __init__(self, limits: Limits, *, rows_at: int = 0, whole_is_row: bool = False):
        self.limits = limits
        self.rows_at = rows_at
        # Elements are counted per row (CM_INPUT_MAX_ROW_ELEMENTS) in a list of rows, or for a document that
        # is itself one row (a JSON line); else for the whole document (CM_INPUT_MAX_ELEMENTS).
        self.per_row = bool(rows_at) or whole_is_row
        self.reset()

    def reset(self) -> None:
        self.depth = 0
        self.in_string = False
        self.string_start = 0  # offset of the first byte of the open string
        self.backslashes = 0  # backslashes at the end of the previous block
        self.offset = 0
        self.lines = 0
        self.row_start = 0
        self.row_elements = 0
        self.row_index = -1

    # where an offset is, for a person: line, byte and (for a top-level list of rows) the row's index
    def where(self, data: bytes, at: int) -> str:
        line = self.lines + data.count(b"\n", 0, max(0, min(at, len(data)))) + 1
        place = f"line {line}, byte {self.offset + at + 1}"
        if self.rows_at == 1 and self.row_index >= 0:
            place = f"index {self.row_index} ({place})"
        return place

    def feed(self, data: bytes) -> None:
        n = len(data)
        if not n:
            return
        lim = self.limits
        a = np.frombuffer(data, dtype=np.uint8)
        kind = _KIND[a]
        pos = np.flatnonzero(kind)
        k = kind[pos]
        quote = k == _QUOTE
        if (k == _BACKSLASH).any() or self.backslashes:
            # A quote after an odd run of backslashes is inside its string.
            backslash = a == ord("\\")
            index = np.arange(n)
            last_other = np.maximum.accumulate(np.where(backslash, -1, index))
            qpos = pos[quote]
            before = qpos - 1
            run = np.where(
                qpos == 0,
                self.backslashes,
                np.where(
                    last_other[np.maximum(before, 0)] < 0,
                    qpos + self.backslashes,
                    before - last_other[np.maximum(before, 0)],
                ),
            )
            escaped = np.zeros(len(k), dtype=bool)
            escaped[np.flatnonzero(quote)] = (run % 2) == 1
            quote &= ~escaped
            if backslash[-1]:
                self.backslashes = (n - 1 - last_other[-1]) if last_other[-1] >= 0 else n + self.backslashes
            else:
                self.backslashes = 0
        # Inside a string: an odd number of real quotes before the event (counting the open one carried in).
        count = np.cumsum(quote, dtype=np.int64)
        inside = ((count - quote + self.in_string) & 1).astype(bool)

        # Structure outside strings: depth after each bracket, comma and colon.
        outside = ~inside & (k <= _COLON)
        sk = k[outside]
        sp = pos[outside]
        delta = (sk == _OPEN).astype(np.int64) - (sk == _CLOSE)
        depth = self.depth + np.cumsum(delta)

        # String lengths (bytes between the quotes, escapes as written).
        qglobal = pos[quote] + self.offset
        if self.in_string:
            closes, opens = qglobal[0::2], qglobal[1::2]
            starts = np.concatenate(([self.string_start], opens + 1))
        else:
            opens, closes = qglobal[0::2], qglobal[1::2]
            starts = opens + 1
        lengths = closes - starts[: len(closes)]
        if len(lengths) and int(lengths.max()) > lim.max_string:
            first = int(np.flatnonzero(lengths > lim.max_string)[0])
            at = int(starts[first]) + lim.max_string - self.offset
            self._row_index_to(sk, sp, depth, at)
            self._fail(data, at, "string")
        if len(starts) > len(closes):
            self.string_start = int(starts[-1])
            if self.offset + n - self.string_start > lim.max_string:
                at = self.string_start + lim.max_string - self.offset
                self._row_index_to(sk, sp, depth, at)
                self._fail(data, at, "string")
            self.in_string = True
        else:
            self.in_string = False
        if not len(sk):
            self._advance(data)
            return

        if int(depth.max()) > lim.max_depth:
            first = int(np.flatnonzero(depth > lim.max_depth)[0])
            self._row_index_to(sk, sp, depth, int(sp[first]))
            self._fail(data, int(sp[first]), "depth")

        rows_at = self.rows_at
        element = ((sk == _OPEN) | (sk == _COMMA) | (sk == _COLON)) & (depth > rows_at)
        if rows_at:
            # A row starts where the list of rows opens and after each comma in it; it ends at the next comma
            # or where the list closes.
            boundary = ((sk == _OPEN) | (sk == _COMMA)) & (depth == rows_at)
            boundary |= (sk == _CLOSE) & (depth == rows_at - 1)
        else:
            boundary = np.zeros(len(sk), dtype=bool)
        elements = np.cumsum(element, dtype=np.int64)
        b_index = np.flatnonzero(boundary)
        last_b = np.maximum.accumulate(np.where(boundary, np.arange(len(sk)), -1))
        base = np.where(last_b >= 0, elements[np.maximum(last_b, 0)], -self.row_elements)
        in_row = elements - base
        max_elements = lim.max_row_elements if self.per_row else lim.max_elements
        if int(in_row.max()) > max_elements:
            first = int(np.flatnonzero(in_row > max_elements)[0])
            self._row_index_to(sk, sp, depth, int(sp[first]))
            self._fail(data, int(sp[first]), "row_elements" if self.per_row else "elements")
        if rows_at:
            # Bytes of each row that ends here, and of the row still open at the end of the block.
            ends = sp[b_index] + self.offset
            starts_b = np.concatenate(([self.row_start], ends[:-1]))
            long_rows = np.flatnonzero(ends - starts_b > lim.max_row_bytes)
            if len(long_rows):
                at = int(starts_b[long_rows[0]]) + lim.max_row_bytes - self.offset
                self._row_index_to(sk, sp, depth, int(sp[b_index[long_rows[0]]]) - 1)
                self._fail(data, at, "row_bytes")
            if len(b_index):
                self.row_start = int(ends[-1])
                self.row_elements = int(elements[-1] - elements[b_index[-1]])
                self._row_index_to(sk, sp, depth, n)
            else:
                self.row_elements += int(elements[-1])
            self.depth = int(depth[-1])
            if self.depth >= rows_at and self.offset + n - self.row_start > lim.max_row_bytes:
                self._fail(data, self.row_start + lim.max_row_bytes - self.offset, "row_bytes")
        else:
            self.row_elements += int(elements[-1])
        self.depth = int(depth[-1])
        self._advance(data)

    def _row_index_to(self, sk, sp, depth, at: int) -> None:
        """Set ``row_index`` to the row that holds local position ``at`` (the boundaries before it count)."""
        if not self.rows_at or not len(sk):
            return
        upto = int(np.searchsorted(sp, at, side="right"))
        head_open = (sk[:upto] == _OPEN) & (depth[:upto] == self.rows_at)
        commas = (sk[:upto] == _COMMA) & (depth[:upto] == self.rows_at)
        if head_open.any():
            after = int(np.flatnonzero(head_open)[-1])
            self.row_index = int(np.count_nonzero(commas[after:]))
        else:
            self.row_index = max(self.row_index, 0) + int(np.count_nonzero(commas))

    def _advance(self, data: bytes) -> None:
        self.offset += len(data)
        self.lines += data.count(b"\n")

    def _fail(self, data: bytes, at: int, kind: str) -> None:
        lim = self.limits
        where = self.where(data, at)
        if kind == "depth":
            raise LimitExceeded(kind, f"nested deeper than {lim.max_depth} levels", where=where, limit=lim.max_depth)
        if kind == "string":
            raise LimitExceeded(
                kind, f"a string longer than {lim.max_string:,} bytes", where=where, limit=lim.max_string
            )
        if kind == "row_elements":
            raise LimitExceeded(
                kind, f"a row of more than {lim.max_row_elements:,} elements", where=where, limit=lim.max_row_elements
            )
        if kind == "elements":
            raise LimitExceeded(
                kind, f"more than {lim.max_elements:,} elements (values and keys)", where=where, limit=lim.max_elements
            )
        raise LimitExceeded(
            "row_bytes", f"a row longer than {lim.max_row_bytes:,} bytes", where=where, limit=lim.max_row_bytes
        )


def size_exceeded(limits: Limits, what: str = "the input") -> LimitExceeded:
    return LimitExceeded(
        "bytes",
        f"{what} is larger than {limits.max_bytes:,} bytes",
        where="",
        limit=limits.max_bytes,
        setting=limits.bytes_setting,
    )


class _LimitedRaw(io.RawIOBase):
    """Reads through to a binary stream, counting bytes against ``max_bytes`` and showing each block to a
    ``JsonLimiter`` before handing it on. A seek to 0 starts the count and the scan again."""

    def __init__(self, stream: IO[bytes], limits: Limits, limiter: JsonLimiter | None):
        self._stream = stream
        self._limits = limits
        self._limiter = limiter
        self.size = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._stream.read(len(buffer))
        if not data:
            return 0
        self.size += len(data)
        if self.size > self._limits.max_bytes:
            raise size_exceeded(self._limits)
        if self._limiter is not None:
            self._limiter.feed(data)
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        if offset == 0 and whence == 0:
            self.size = 0
            if self._limiter is not None:
                self._limiter.reset()
        elif offset != 0 or whence != 1:
            raise io.UnsupportedOperation("a limited stream only rewinds to its start")
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()


def limited_stream(
    stream: IO[bytes], limits: Limits, *, json_rows_at: int | None = None, buffer_size: int = 1 << 16
) -> io.BufferedReader:
    """``stream`` read through the limits: its size, and, when ``json_rows_at`` is given, the JSON scan."""
    limiter = JsonLimiter(limits, rows_at=json_rows_at) if json_rows_at is not None else None
    return io.BufferedReader(_LimitedRaw(stream, limits, limiter), buffer_size)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:30]} is beyond the range of a 64-bit float")
    return value


def _int64(text: str) -> int:
    digits = text.lstrip("-")
    value = int(text) if len(digits) <= 19 else None
    if value is None or not INT64_MIN <= value <= INT64_MAX:
        shown = text if len(text) <= 30 else f"{text[:20]}... ({len(digits)} digits)"
        raise ValueError(f"the integer {shown} is out of range (a 64-bit integer)")
    return value


def json_check(data: bytes, limits: Limits, *, row: bool = False) -> None:
    """Scan a whole JSON document (bytes) against the limits (``row``: it is one row, such as a JSON line);
    raise ``LimitExceeded``."""
    if len(data) > limits.max_bytes:
        raise size_exceeded(limits)
    limiter = JsonLimiter(limits, whole_is_row=row)
    view = memoryview(data)
    for start in range(0, len(data), 1 << 16):
        limiter.feed(bytes(view[start : start + (1 << 16)]))


def json_loads(
    data: bytes | str,
    limits: Limits | None = None,
    *,
    allow_nan: bool = False,
    row: bool = False,
    big_ints: bool = False,
) -> Any:
    """One JSON document, scanned first and then parsed: ``LimitExceeded`` for a limit passed, ``ValueError``
    (with the usual ``json`` message) for JSON that is not valid, integers beyond 64 bits included unless
    ``big_ints`` (request bodies: their serializers bound each integer to its column and name the field), and NaN
    and Infinity unless ``allow_nan`` (metric bundles written by Python hold them; they are stored as null)."""
    import json

    limits = limits or request_limits()
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    json_check(raw, limits, row=row)
    text = data if isinstance(data, str) else raw.decode("utf-8")
    parse_int = int if big_ints else _int64  # int() itself refuses more than 4,300 digits
    if allow_nan:
        return json.loads(text, parse_int=parse_int)
    return json.loads(text, parse_constant=_no_constant, parse_int=parse_int, parse_float=_finite)


# --- integers and floats ----------------------------------------------------------------------------------


def check_int64(value: int) -> int:
    """``value`` if it fits a PostgreSQL bigint, else ``ValueError`` saying so."""
    if not INT64_MIN <= value <= INT64_MAX:
        text = str(value) if abs(value) < 10**40 else f"{str(value)[:20]}... ({len(str(abs(value)))} digits)"
        raise ValueError(f"{text} is out of range (a 64-bit integer)")
    return value


def finite_float(value: Any) -> float:
    """``value`` as a finite float, else ``ValueError`` (NaN, infinity, a number beyond a double)."""
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(f"{value!r} is too large for a 64-bit float") from None
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


# --- YAML ----------------------------------------------------------------------------------------------


def yaml_load(text: str | bytes, limits: Limits | None = None) -> Any:
    """One YAML document through ``LimitedSafeLoader``. Raises ``LimitExceeded`` (a limit, an alias, a
    duplicate key) or ``yaml.YAMLError`` (syntax)."""
    from .yaml_loader import LimitedSafeLoader

    limits = limits or yaml_limits()
    size = len(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
    if size > limits.max_bytes:
        raise size_exceeded(limits, "the YAML")
    loader = LimitedSafeLoader(text, limits)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def yaml_load_all(text: str | bytes, limits: Limits | None = None) -> list[Any]:
    """Every document of a YAML stream through ``LimitedSafeLoader`` (the limits apply to all of them)."""
    from .yaml_loader import LimitedSafeLoader

    limits = limits or yaml_limits()
    size = len(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
    if size > limits.max_bytes:
        raise size_exceeded(limits, "the YAML")
    loader = LimitedSafeLoader(text, limits)
    try:
        documents = []
        while loader.check_data():
            documents.append(loader.get_data())
        return documents
    finally:
        loader.dispose()


# --- compressed files -----------------------------------------------------------------------------------

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"PK\x03\x04", "zip"),
)


def compression_of(path: str) -> str:
    """``gzip``, ``bzip2``, ``xz``, ``zstd``, ``zip`` or ``""``, from the first bytes of the file."""
    with open(path, "rb") as handle:
        head = handle.read(8)
    return next((name for magic, name in _MAGIC if head.startswith(magic)), "")


def decompressed_path(path: str, limits: Limits, *, what: str = "the file") -> str | None:
    """For a gzip, bzip2 or xz file: a temporary copy of its content (the caller removes it), refused as soon
    as more than ``limits.max_bytes`` come out, so a small file that expands hugely costs at most the limit.
    ``None`` for a file that is not compressed. zstd and zip (which the readers would not undo the same way)
    are refused."""
    kind = compression_of(path)
    if not kind:
        return None
    if kind in ("zstd", "zip"):
        raise LimitExceeded(
            "compression",
            f"{what} is compressed with {kind}, which is not accepted here; upload it plain or gzip-compressed",
            where="file",
        )
    openers: dict[str, Callable[..., Any]] = {"gzip": gzip.open, "bzip2": bz2.open, "xz": lzma.open}
    opener = openers[kind]
    handle, out_path = tempfile.mkstemp(suffix=".decompressed")
    total = 0
    try:
        with os.fdopen(handle, "wb") as out, opener(path, "rb") as source:
            while True:
                block = source.read(1 << 20)
                if not block:
                    break
                total += len(block)
                if total > limits.max_bytes:
                    raise LimitExceeded(
                        "bytes",
                        f"{what} ({kind}) decompresses to more than {limits.max_bytes:,} bytes",
                        where="file",
                        limit=limits.max_bytes,
                        setting=limits.bytes_setting,
                    )
                out.write(block)
    except (OSError, EOFError, lzma.LZMAError) as exc:
        os.unlink(out_path)
        raise LimitExceeded("compression", f"{what} is not a readable {kind} file ({exc})", where="file") from exc
    except BaseException:
        os.unlink(out_path)
        raise
    return out_path


def first_byte(stream: IO[bytes], within: int = 1 << 16) -> bytes:
    """The first byte of ``stream`` that is not blank or a UTF-8 byte-order mark, looked for in its first
    ``within`` bytes only (a file of blank space is not read to its end one byte at a time); ``b""`` for an
    empty or blank file, ``b" "`` when there is only blank space as far as it looked. The caller rewinds."""
    head = stream.read(within)
    rest = head.lstrip(b" \t\r\n\f\v\xef\xbb\xbf")
    if rest:
        return rest[:1]
    return b" " if len(head) == within and stream.read(1) else b""
