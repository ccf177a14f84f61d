"""The log of one quantum (its ``<task>_log`` dataset) as plain rows, read in bounded memory.

A quantum's log is a ``ButlerLogRecords`` dataset written by ``pipetask run`` into the output RUN
collection, failed quanta included (the final job of a BPS workflow registers it). The file is JSON:
either one JSON document (what ``pipetask run`` writes) or one record per line (a streamed log). Memory stays
bounded: a large document is streamed keeping only its last records, of a large line-per-record file only the
end is read (the failure is at the end).
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .registry import RepoError, open_butler

__all__ = ["LOG_MAX_BYTES", "LOG_MAX_RECORDS", "QuantumLog", "quantum_log"]

LOG_MAX_BYTES = 2 * 1024 * 1024  # read a log file whole up to this size; only its end beyond
DOCUMENT_MAX_BYTES = 256 * 1024 * 1024  # a larger one-document log is not read (streamed, it would take seconds)
LOG_MAX_RECORDS = 500  # show at most this many records (the last ones)
MESSAGE_MAX_CHARS = 8000  # one record's message (and traceback) is cut here
_STREAMING_EXTRA = "###EXTRA###"  # ButlerLogRecords.STREAMING_EXTRA_DELIMITER


@dataclass
class QuantumLog:
    """What could be read of one quantum's log: its last records, and what was left out."""

    uri: str = ""
    size: int | None = None  # bytes of the file, when known
    records: list[dict[str, Any]] = field(default_factory=list)  # {time, level, name, message, traceback}
    total: int | None = None  # records in the whole log, when the whole log was read
    skipped_bytes: int = 0  # bytes at the start of the file that were not read (a large log)
    error: str = ""  # why nothing (or not everything) could be shown

    @property
    def truncated(self) -> bool:
        return bool(self.skipped_bytes) or (self.total is not None and self.total > len(self.records))


def _row(record: Any) -> dict[str, Any]:
    get = record.get if isinstance(record, dict) else lambda k, d=None: getattr(record, k, d)
    when: Any = get("asctime")
    message = str(get("message", "") or "")
    traceback = str(get("exc_info", "") or "")
    return {
        "time": when.isoformat() if hasattr(when, "isoformat") else str(when or ""),
        "level": str(get("levelname", "") or ""),
        "name": str(get("name", "") or ""),
        "message": message[:MESSAGE_MAX_CHARS] + ("…" if len(message) > MESSAGE_MAX_CHARS else ""),
        "traceback": traceback[:MESSAGE_MAX_CHARS] + ("…" if len(traceback) > MESSAGE_MAX_CHARS else ""),
    }


def _parse_whole(data: bytes, result: QuantumLog, max_records: int) -> None:
    from lsst.daf.butler.logging import ButlerLogRecords

    records = list(ButlerLogRecords.from_raw(data))
    result.total = len(records)
    result.records = [_row(r) for r in records[-max_records:]]


def _parse_tail(data: bytes, result: QuantumLog, max_records: int) -> None:
    """The complete JSON lines at the end of a one-record-per-line log (the first, partial line is dropped)."""
    lines = data.decode("utf-8", errors="replace").splitlines()[1:]
    rows = []
    for line in lines:
        line = line.strip()
        if line.startswith(_STREAMING_EXTRA):
            break
        if not line:
            continue
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    result.records = [_row(r) for r in rows[-max_records:]]


def _stream_document(stream: Any, result: QuantumLog, max_records: int) -> None:
    """The last records of a one-document log, streamed: memory holds ``max_records`` records, not the file."""
    import ijson

    last: deque[dict[str, Any]] = deque(maxlen=max_records)
    total = 0
    for record in ijson.items(stream, "records.item"):
        total += 1
        last.append(record)
    result.total = total
    result.records = [_row(r) for r in last]


def _read(uri: Any, result: QuantumLog, *, max_bytes: int, max_records: int) -> None:
    result.uri = str(uri)
    size = uri.size()
    result.size = size
    if size <= max_bytes:
        _parse_whole(uri.read(), result, max_records)
        return
    with uri.open("rb") as stream:
        head = stream.read(64)
        stream.seek(0)
        if head.lstrip().startswith(b'{"extended"'):
            if size > DOCUMENT_MAX_BYTES:
                result.error = (
                    f"This log is one JSON document of {size} bytes, more than the {DOCUMENT_MAX_BYTES} bytes "
                    f"read here; read it from {result.uri}."
                )
                return
            _stream_document(stream, result, max_records)
            return
        if head.lstrip().startswith(b"["):
            result.error = f"This log is an old-style JSON list of {size} bytes; read it from {result.uri}."
            return
        stream.seek(size - max_bytes)
        data = stream.read(max_bytes)
    result.skipped_bytes = size - max_bytes
    _parse_tail(data, result, max_records)


def quantum_log(
    butler_config: str,
    *,
    run: str,
    task_label: str,
    data_id: dict[str, Any],
    uri: str = "",
    max_bytes: int = LOG_MAX_BYTES,
    max_records: int = LOG_MAX_RECORDS,
) -> QuantumLog:
    """The last records of the ``<task_label>_log`` dataset of ``data_id`` in the RUN collection ``run``.

    The dataset is found through the registry; ``uri`` (where the job wrote it, recorded when the failure
    was seen) is read when the registry does not know it (a workflow whose final job did not run).
    Never raises for a missing or unreadable log: ``error`` says why.
    """
    from lsst.resources import ResourcePath

    result = QuantumLog()
    location: Any = None
    try:
        butler = open_butler(butler_config)
        ref = butler.find_dataset(f"{task_label}_log", data_id, collections=[run])
        if ref is not None:
            location = butler.getURI(ref)
    except RepoError as exc:
        result.error = str(exc)
    except Exception as exc:  # an unknown dataset type or data ID: try the recorded location
        result.error = f"The registry has no {task_label}_log for {data_id} in {run}: {exc}"
    if location is None and uri:
        location = ResourcePath(uri)
    if location is None:
        result.error = result.error or f"No {task_label}_log dataset for {data_id} in {run}."
        return result
    result.error = ""
    try:
        _read(location, result, max_bytes=max_bytes, max_records=max_records)
    except FileNotFoundError:
        result.error = f"The log file {location} does not exist (any more)."
    except Exception as exc:
        result.error = f"The log at {location} could not be read: {type(exc).__name__}: {exc}"
    return result
