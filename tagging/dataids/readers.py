"""Stream raw data-ID rows out of uploaded files.

Every reader yields ``(where, mapping)`` pairs, ``where`` being what a person
needs to find the row again: ``line 12`` for CSV (the header is line 1),
``index 3`` for JSON (0-based position in the list). Files are read as
streams; only the astropy formats (ECSV, VOTable, FITS), which are
columnar, are read whole, after what their headers say (rows, bytes) was
checked against the limits; Parquet is read 1,024 rows at a time.

Every reader is bounded by ``core.limits`` while it streams: JSON depth, string
and row length, elements per row (scanned before ijson sees the bytes), CSV cell
and line length, and the decoded size; a limit passed is a ``ReadError`` naming
the limit and where.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections.abc import Iterator
from dataclasses import replace
from typing import IO, Any

from core.limits import LimitExceeded, Limits, decompressed_path, first_byte, limited_stream, upload_limits

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
PARQUET_BATCH_ROWS = 1024
METADATA_KEYS_MAX = 100  # scalar keys beside "data_ids" in a JSON object (kept as provenance)


class ReadError(Exception):
    """The file cannot be read at all (syntax, encoding, shape, a limit passed). ``where`` says where."""

    def __init__(self, message: str, where: str = ""):
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
        self.reason = message

    @classmethod
    def from_limit(cls, exc: LimitExceeded) -> ReadError:
        return cls(exc.reason + ".", exc.where or "file")


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


def _bounded_lines(text: io.TextIOWrapper, limits: Limits, seen_long: list[bool]) -> Iterator[str]:
    """Lines of a text stream for ``csv.reader``, each at most ``max_row_bytes`` long (``readline`` with a
    bound, so a file without newlines is never held whole). ``seen_long[0]`` is set when a line is longer
    than a cell may be, so the reader measures cells only then."""
    readline = text.readline
    limit = limits.max_row_bytes
    number = 0
    while True:
        line = readline(limit + 1)
        if not line:
            return
        number += 1
        size = len(line)
        if size > limits.max_string:
            seen_long[0] = True
        if size > limit:
            raise LimitExceeded(
                "row_bytes", f"a line longer than {limit:,} characters", where=f"line {number}", limit=limit
            )
        yield line


def read_csv(stream: IO[bytes], limits: Limits | None = None) -> Iterator[RawRow]:
    limits = limits or upload_limits()
    _check_utf8_start(stream)
    stream = limited_stream(stream, limits)
    # Bytes that are not UTF-8 arrive as lone surrogates, refused below on the line that holds them
    # (strict decoding fails a whole 8 kB chunk at once, so it cannot say which line).
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    # One cell at most CM_INPUT_MAX_STRING_BYTES, one line at most CM_INPUT_MAX_ROW_BYTES, measured here
    # (csv's own field limit, process-wide, only has to stay out of the way).
    if csv.field_size_limit() <= limits.max_row_bytes:
        csv.field_size_limit(limits.max_row_bytes + 1)
    seen_long = [False]
    max_cells = limits.max_row_elements
    reader = csv.reader(_bounded_lines(text, limits, seen_long))
    line = 1
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise ReadError("The file is empty: a header row of dimension names is needed.", "line 1")
        _refuse_undecodable(header, "line 1")
        _check_cells(header, "line 1", limits, seen_long)
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
            if seen_long[0] or len(row) > max_cells:
                _check_cells(row, f"line {line}", limits, seen_long)
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
    except LimitExceeded as exc:
        raise ReadError.from_limit(exc) from exc
    finally:
        text.detach()


def _check_cells(cells: list[str], where: str, limits: Limits, seen_long: list[bool]) -> None:
    if len(cells) > limits.max_row_elements:
        raise LimitExceeded(
            "row_elements",
            f"a row of more than {limits.max_row_elements:,} cells",
            where=where,
            limit=limits.max_row_elements,
        )
    if not seen_long[0]:
        return  # no line since the last row was longer than a cell may be
    seen_long[0] = False
    for index, cell in enumerate(cells):
        if len(cell) > limits.max_string:
            raise LimitExceeded(
                "string",
                f"cell {index + 1} is longer than {limits.max_string:,} characters",
                where=where,
                limit=limits.max_string,
            )


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
    if "integer overflow" in first:
        hint = "an integer beyond the 64-bit range"
    elif "floating point) overflow" in first:
        hint = "a number beyond the range of a 64-bit float"
    return ReadError(f"malformed JSON near the data ID at this position: {hint}.", where)


def _first_char(stream: IO[bytes]) -> bytes:
    return first_byte(stream)


def read_json(stream: IO[bytes], limits: Limits | None = None) -> tuple[dict[str, Any], Iterator[RawRow]]:
    """Returns (metadata, rows). Accepts a list of mappings or of ``{"dataId": ..., "records": ...}``,
    or an object ``{"data_ids": [...], "name": ..., ...}`` whose other scalar keys are metadata.
    The bytes are scanned against ``limits`` before ijson sees them (rows are the items of the list)."""
    import ijson

    limits = limits or upload_limits()
    _check_utf8_start(stream)
    first = _first_char(stream)
    stream.seek(0)
    if first == b"":
        raise ReadError("The file is empty.", "start of file")
    stream = limited_stream(stream, limits, json_rows_at=1 if first == b"[" else 2)
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
                    if len(metadata) > METADATA_KEYS_MAX:
                        raise ReadError(
                            f"more than {METADATA_KEYS_MAX} keys beside 'data_ids': put the data IDs in the list.",
                            "start of file",
                        )
                elif key_prefix == "dataId" and event == "start_map":
                    # A single Butler-serialised data ID at the top level.
                    has_list = False
                    metadata = {"__single__": True}
                    break
        except (ijson.JSONError, UnicodeDecodeError) as exc:
            raise _json_error(exc, -1) from exc
        except LimitExceeded as exc:
            raise ReadError.from_limit(exc) from exc
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
        except LimitExceeded as exc:
            raise ReadError.from_limit(exc) from exc

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


def read_astropy(path: str, fmt: str, limits: Limits | None = None, *, max_rows: int | None = None) -> Iterator[RawRow]:
    """Rows of an ECSV, VOTable, Parquet or FITS table. Before anything is read whole: a gzip/bzip2/xz file
    is decompressed with a bound, and the rows, bytes and columns its header or metadata declares are checked
    against ``limits`` and ``max_rows`` (the uploader's quota), so a hostile file is refused quickly."""
    limits = limits or upload_limits()
    try:
        plain = decompressed_path(path, limits, what=f"the {fmt.upper()} file")
    except LimitExceeded as exc:
        raise ReadError.from_limit(exc) from exc
    try:
        yield from _read_table(plain or path, fmt, limits, max_rows)
    except LimitExceeded as exc:
        raise ReadError.from_limit(exc) from exc
    finally:
        if plain:
            os.unlink(plain)


def _too_many_rows(rows: int, max_rows: int | None) -> None:
    if max_rows is not None and rows > max_rows:
        raise ReadError(
            f"the table holds {rows:,} rows, more data IDs than your quota leaves ({max(max_rows, 0):,}; "
            "CM_DATAID_QUOTA).",
            "file",
        )


def _check_shape(rows: int | None, decoded: int, columns: int, limits: Limits, max_rows: int | None) -> None:
    if rows is not None:
        _too_many_rows(rows, max_rows)
    if decoded > limits.max_bytes:
        raise LimitExceeded(
            "bytes",
            f"the table's data is {decoded:,} bytes once decoded, more than {limits.max_bytes:,}",
            where="file",
            limit=limits.max_bytes,
            setting=limits.bytes_setting,
        )
    if columns > limits.max_row_elements:
        raise LimitExceeded(
            "row_elements",
            f"the table has {columns:,} columns, more than {limits.max_row_elements:,}",
            where="file",
            limit=limits.max_row_elements,
        )


def _read_table(path: str, fmt: str, limits: Limits, max_rows: int | None) -> Iterator[RawRow]:
    if fmt == "parquet":
        # astropy's Parquet reader requires pandas, which is not installed; pyarrow (pinned) reads it, one
        # batch at a time, after its metadata (rows, uncompressed bytes, columns) was checked.
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(path)
            meta = parquet.metadata
            decoded = 0
            for i in range(meta.num_row_groups):
                group = meta.row_group(i)
                decoded += max(group.total_byte_size, sum(
                    group.column(j).total_uncompressed_size for j in range(group.num_columns)
                ))  # fmt: skip
        except Exception as exc:  # pyarrow raises many kinds for unreadable files
            raise ReadError(f"pyarrow could not read this PARQUET file: {exc}") from exc
        _check_shape(meta.num_rows, decoded, meta.num_columns, limits, max_rows)
        if meta.num_rows == 0:
            raise ReadError("The table has no rows.")
        # Dictionary-encoded values are small in the metadata and large once decoded (one value repeated in
        # every row): the decoded bytes are counted batch by batch too.
        number = 0
        decoded = 0
        try:
            for read in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
                batch = _dictionary_decoded(read)
                decoded += batch.nbytes
                if decoded > limits.max_bytes:
                    raise LimitExceeded(
                        "bytes",
                        f"the table's data is more than {limits.max_bytes:,} bytes once decoded",
                        where=f"row {number + batch.num_rows}",
                        limit=limits.max_bytes,
                        setting=limits.bytes_setting,
                    )
                for values in batch.to_pylist():
                    number += 1
                    yield f"row {number}", _checked_values(values, f"row {number}", limits)
        except (ReadError, LimitExceeded):
            raise
        except Exception as exc:
            raise ReadError(f"pyarrow could not read this PARQUET file: {exc}", f"row {number + 1}") from exc
        return

    if fmt == "fits":
        shape = _fits_table_shape(path, limits)
        if shape is not None:
            _check_shape(*shape, limits, max_rows)
    elif fmt == "ecsv":
        _check_ecsv(path, limits, max_rows)
    else:
        _check_votable(path, limits)

    from astropy.table import Table

    try:
        table = Table.read(path, format=ASTROPY_FORMATS[fmt])
    except Exception as exc:  # astropy raises many kinds for unreadable files
        raise ReadError(f"astropy could not read this {fmt.upper()} file: {exc}") from exc
    if len(table) == 0:
        raise ReadError("The table has no rows.")
    _too_many_rows(len(table), max_rows)
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
        yield f"row {i + 1}", _checked_values(values, f"row {i + 1}", limits)


def _dictionary_decoded(batch):
    """The batch with dictionary columns decoded, so its ``nbytes`` is what its rows cost."""
    import pyarrow as pa

    if not any(pa.types.is_dictionary(column.type) for column in batch.columns):
        return batch
    columns = [c.dictionary_decode() if pa.types.is_dictionary(c.type) else c for c in batch.columns]
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def _checked_values(values: dict[str, Any], where: str, limits: Limits) -> dict[str, Any]:
    for name, value in values.items():
        if isinstance(value, str | bytes) and len(value) > limits.max_string:
            raise LimitExceeded(
                "string",
                f"the value of column {name!r} is longer than {limits.max_string:,} characters",
                where=where,
                limit=limits.max_string,
            )
    return values


_FITS_BLOCK = 2880


def _fits_table_shape(path: str, limits: Limits) -> tuple[int, int, int] | None:
    """(rows, data bytes, columns) of the first table extension, read from the headers alone (80-byte
    cards in 2880-byte blocks); ``None`` when there is none (astropy then says so). A header longer than
    CM_INPUT_MAX_ROW_BYTES, or data the file is too short to hold, is refused."""
    size = os.path.getsize(path)
    offset = 0
    with open(path, "rb") as handle:
        for _hdu in range(1000):
            handle.seek(offset)
            cards: dict[str, str] = {}
            header_bytes = 0
            while True:
                block = handle.read(_FITS_BLOCK)
                if len(block) < _FITS_BLOCK:
                    return None  # truncated: astropy reports it
                header_bytes += _FITS_BLOCK
                if header_bytes > limits.max_row_bytes:
                    raise LimitExceeded(
                        "row_bytes",
                        f"a FITS header longer than {limits.max_row_bytes:,} bytes",
                        where=f"byte {offset + 1}",
                        limit=limits.max_row_bytes,
                    )
                ended = False
                for start in range(0, _FITS_BLOCK, 80):
                    card = block[start : start + 80].decode("ascii", "replace")
                    key = card[:8].strip()
                    if key == "END":
                        ended = True
                        break
                    if card[8:10] == "= ":
                        cards[key] = card[10:].split("/", 1)[0].strip().strip("'").strip()
                if ended:
                    break

            def number(key: str, default: int = 0, cards=cards, at=offset) -> int:
                return _fits_int(cards, key, default, at)

            naxis = number("NAXIS")
            axes = [number(f"NAXIS{i}") for i in range(1, min(naxis, 999) + 1)]
            elements = 1
            for axis in axes:
                elements *= axis
            data = abs(number("BITPIX", 8)) // 8 * number("GCOUNT", 1) * (number("PCOUNT") + (elements if axes else 0))
            start = offset + header_bytes
            if data > size - start:
                raise ReadError(
                    f"the FITS header says its data is {data:,} bytes, but the file holds only {size - start:,} more.",
                    f"byte {offset + 1}",
                )
            if offset and cards.get("XTENSION", "").upper() in ("BINTABLE", "TABLE") and len(axes) >= 2:
                return axes[1], axes[0] * axes[1] + number("PCOUNT"), number("TFIELDS")
            offset = start + -(-data // _FITS_BLOCK) * _FITS_BLOCK
            if offset >= size:
                return None
    return None


def _fits_int(cards: dict[str, str], key: str, default: int, offset: int) -> int:
    try:
        value = int(float(cards.get(key, default)))
    except (ValueError, OverflowError):
        raise ReadError(f"the FITS header's {key} is not a number.", f"byte {offset + 1}") from None
    if value < 0 and key != "BITPIX":
        raise ReadError(f"the FITS header's {key} is negative.", f"byte {offset + 1}")
    return value


def _check_ecsv(path: str, limits: Limits, max_rows: int | None) -> None:
    """The ECSV header's YAML through the limited loader (no aliases, bounded), and the number and length
    of its lines, in one streamed pass before astropy reads the file whole."""
    from core.limits import yaml_load

    header: list[str] = []
    header_bytes = 0
    lines = 0
    longest = 0
    pending = 0
    with open(path, "rb") as handle:
        for raw in iter(lambda: handle.readline(limits.max_row_bytes + 1), b""):
            lines += 1
            if len(raw) > limits.max_row_bytes:
                raise LimitExceeded(
                    "row_bytes",
                    f"a line longer than {limits.max_row_bytes:,} bytes",
                    where=f"line {lines}",
                    limit=limits.max_row_bytes,
                )
            longest = max(longest, len(raw))
            if raw.startswith(b"#") and lines == len(header) + 1:
                header_bytes += len(raw)
                if header_bytes > limits.max_row_bytes:
                    raise LimitExceeded(
                        "row_bytes",
                        f"an ECSV header longer than {limits.max_row_bytes:,} bytes",
                        where=f"line {lines}",
                        limit=limits.max_row_bytes,
                    )
                header.append(raw.decode("utf-8", "replace"))
            elif raw.strip():
                pending += 1
    text = "\n".join(line[2:] if line.startswith("# ") else line[1:] for line in header[1:])
    try:
        yaml_load(text, replace(limits, max_bytes=limits.max_row_bytes, bytes_setting="CM_INPUT_MAX_ROW_BYTES"))
    except LimitExceeded as exc:
        raise LimitExceeded(exc.kind, f"the ECSV header has {exc.description}", where=exc.where, limit=exc.limit,
                            setting=exc.setting) from exc  # fmt: skip
    except Exception:  # noqa: S110  a header astropy cannot read either: astropy says why
        pass
    _too_many_rows(max(pending - 1, 0), max_rows)  # the first line after the header names the columns


def _check_votable(path: str, limits: Limits) -> None:
    """A streamed expat pass before astropy reads the file: nesting depth, no DTD (entities), and no
    STREAM or FITS whose data is somewhere else (``href``: astropy would open that URL or local file)."""
    from xml.parsers import expat

    parser = expat.ParserCreate()
    depth = 0

    def where() -> str:
        return f"line {parser.CurrentLineNumber}"

    def start(name: str, attrs: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth > limits.max_depth:
            raise LimitExceeded("depth", f"nested deeper than {limits.max_depth} levels", where=where(),
                                limit=limits.max_depth)  # fmt: skip
        local = name.rsplit(":", 1)[-1]
        if local in ("STREAM", "FITS") and "href" in attrs:
            raise ReadError(
                f"a {local} that points elsewhere (href) is not accepted: put the data in the file.", where()
            )

    def end(name: str) -> None:
        nonlocal depth
        depth -= 1

    def doctype(*args) -> None:
        raise ReadError("a VOTable with a DOCTYPE (entities) is not accepted.", where())

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = doctype
    try:
        with open(path, "rb") as handle:
            parser.ParseFile(handle)
    except expat.ExpatError as exc:
        raise ReadError(f"astropy could not read this VOTABLE file: {exc}") from exc
