"""Stream raw data-ID rows out of uploaded files.

Every reader yields ``(where, mapping)`` pairs, ``where`` being what a person
needs to find the row again: ``line 12`` for CSV (the header is line 1),
``index 3`` for JSON (0-based position in the list). Files are read as
streams; only the astropy formats (ECSV, VOTable, Parquet, FITS), which are
columnar, are read whole.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from typing import IO, Any

RawRow = tuple[str, dict[str, Any]]

ASTROPY_FORMATS = {
    "ecsv": "ascii.ecsv",
    "votable": "votable",
    "vot": "votable",
    "xml": "votable",
    "parquet": "parquet",
    "fits": "fits",
}
FORMATS = ("json", "csv", *ASTROPY_FORMATS)


class ReadError(Exception):
    """The file cannot be read at all (syntax, encoding, shape). ``where`` says where."""

    def __init__(self, message: str, where: str = ""):
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
        self.reason = message


def guess_format(filename: str, declared: str | None = None) -> str:
    if declared:
        declared = declared.lower().lstrip(".")
        if declared not in FORMATS:
            raise ReadError(f"Unknown format {declared!r}; use one of: {', '.join(FORMATS)}.")
        return declared
    suffix = filename.lower().rsplit(".", 1)[-1] if "." in filename else ""
    if suffix in FORMATS:
        return suffix
    raise ReadError(
        f"Cannot tell the format of {filename!r} from its name; name it .json, .csv, .ecsv, .vot, .parquet or .fits, "
        "or give the format."
    )


def _check_utf8_start(stream: IO[bytes]) -> None:
    head = stream.read(4)
    stream.seek(0)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ReadError("The file is UTF-16; save it as UTF-8.")


def _refuse_undecodable(cells: list[str], where: str) -> None:
    for cell in cells:
        if not cell.isascii():
            for ch in cell:
                if "\udc80" <= ch <= "\udcff":
                    raise ReadError(f"the file is not UTF-8 text (byte 0x{ord(ch) - 0xDC00:02x}).", where)


def read_csv(stream: IO[bytes]) -> Iterator[RawRow]:
    _check_utf8_start(stream)
    # Bytes that are not UTF-8 arrive as lone surrogates, refused below on the line that holds them
    # (strict decoding fails a whole 8 kB chunk at once, so it cannot say which line).
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = csv.reader(text)
    line = 1
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise ReadError("The file is empty: a header row of dimension names is needed.", "line 1")
        _refuse_undecodable(header, "line 1")
        names = [h.strip() for h in header]
        for i, name in enumerate(names):
            if not name:
                raise ReadError(f"column {i + 1} has no name.", "line 1")
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ReadError(f"column {', '.join(sorted(duplicates))} appears twice in the header.", "line 1")
        for row in reader:
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            _refuse_undecodable(row, f"line {line}")
            if len(row) != len(names):
                missing = names[len(row) :] if len(row) < len(names) else []
                what = (
                    f"missing value for {', '.join(repr(m) for m in missing)}"
                    if missing
                    else "more values than header columns"
                )
                yield f"line {line}", {"__error__": f"{what} (expected {len(names)} columns, found {len(row)})."}
                continue
            yield f"line {line}", {name: cell.strip() for name, cell in zip(names, row, strict=True)}
    except UnicodeDecodeError as exc:
        raise ReadError(
            f"the file is not UTF-8 text (byte 0x{exc.object[exc.start]:02x}).", f"line {line + 1}"
        ) from exc
    except csv.Error as exc:
        raise ReadError(f"malformed CSV: {exc}.", f"line {reader.line_num}") from exc
    finally:
        text.detach()


def _json_error(exc: Exception, index: int) -> ReadError:
    message = str(exc)
    if message.startswith("b'") or message.startswith('b"'):
        message = message[2:-1]
    first = (
        message.replace("\\n", "\n")
        .split("\n", 1)[0]
        .strip()
        .removeprefix("parse error: ")
        .removeprefix("lexical error: ")
    )
    where = f"index {index}" if index >= 0 else "start of file"
    first = first.rstrip(". ")
    if isinstance(exc, UnicodeDecodeError) or "UTF8" in first or "UTF-8" in first:
        return ReadError("the file is not UTF-8 text near the data ID at this position.", where)
    hint = "the JSON ends too early" if "premature EOF" in first else first
    return ReadError(f"malformed JSON near the data ID at this position: {hint}.", where)


def _first_char(stream: IO[bytes]) -> bytes:
    while True:
        ch = stream.read(1)
        if not ch:
            return b""
        if ch.isspace() or ch == b"\xef" or ch in (b"\xbb", b"\xbf"):
            continue
        return ch


def read_json(stream: IO[bytes]) -> tuple[dict[str, Any], Iterator[RawRow]]:
    """Returns (metadata, rows). Accepts a list of mappings or of ``{"dataId": ..., "records": ...}``,
    or an object ``{"data_ids": [...], "name": ..., ...}`` whose other scalar keys are metadata."""
    import ijson

    _check_utf8_start(stream)
    first = _first_char(stream)
    stream.seek(0)
    if first == b"":
        raise ReadError("The file is empty.", "start of file")
    metadata: dict[str, Any] = {}
    if first == b"[":
        prefix = "item"
    elif first == b"{":
        has_list = False
        try:
            for key_prefix, event, value in ijson.parse(stream):
                if key_prefix == "data_ids" and event == "start_array":
                    has_list = True
                elif "." not in key_prefix and key_prefix and event in ("string", "number", "boolean", "null"):
                    metadata[key_prefix] = value
                elif key_prefix == "dataId" and event == "start_map":
                    # A single Butler-serialised data ID at the top level.
                    has_list = False
                    metadata = {"__single__": True}
                    break
        except (ijson.JSONError, UnicodeDecodeError) as exc:
            raise _json_error(exc, -1) from exc
        stream.seek(0)
        if metadata.get("__single__"):
            metadata = {}
            prefix = ""
        elif not has_list:
            raise ReadError(
                "A JSON object must hold the data IDs in a 'data_ids' list (or be a list itself).", "start of file"
            )
        else:
            prefix = "data_ids.item"
    else:
        raise ReadError(
            f"JSON data IDs must be a list or an object, not something starting with {first!r}.", "start of file"
        )

    def rows() -> Iterator[RawRow]:
        index = -1
        try:
            for index, item in enumerate(ijson.items(stream, prefix, use_float=True)):
                yield f"index {index}", _unwrap_json_item(item)
        except (ijson.JSONError, UnicodeDecodeError) as exc:
            raise _json_error(exc, index + 1) from exc

    return metadata, rows()


def _unwrap_json_item(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        return {"__error__": f"a data ID must be a mapping, not {type(item).__name__}."}
    if "dataId" in item:
        # DataCoordinate.to_simple(): {"dataId": {...}, "records": {...} | null}; records are not needed.
        extra = set(item) - {"dataId", "records"}
        if extra:
            return {"__error__": f"unexpected key(s) {', '.join(sorted(extra))} beside 'dataId'."}
        data_id = item["dataId"]
        if not isinstance(data_id, dict):
            return {"__error__": "'dataId' must be a mapping."}
        return dict(data_id)
    return item


def read_astropy(path: str, fmt: str) -> Iterator[RawRow]:
    from astropy.table import Table

    try:
        if fmt == "parquet":
            # astropy's Parquet reader requires pandas, which is not installed; pyarrow (pinned) reads it.
            import pyarrow.parquet as pq

            table = Table(pq.read_table(path).to_pydict())
        else:
            table = Table.read(path, format=ASTROPY_FORMATS[fmt])
    except Exception as exc:  # astropy raises many kinds for unreadable files
        raise ReadError(f"astropy could not read this {fmt.upper()} file: {exc}") from exc
    if len(table) == 0:
        raise ReadError("The table has no rows.")
    names = list(table.colnames)
    for i, row in enumerate(table):
        values = {}
        for name in names:
            value = row[name]
            if hasattr(value, "mask") and bool(getattr(value, "mask", False)):
                value = None
            elif hasattr(value, "item"):
                value = value.item()
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            values[name] = value
        yield f"row {i + 1}", values
