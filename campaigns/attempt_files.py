"""Reading what an attempt left in its submit directory (its log file), in bounded time and memory.

Only files under ``CM_SUBMIT_ROOT`` are read: the directory comes from the database (the executor recorded it),
and a row that points elsewhere is refused rather than followed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from lsst_adapter.bps import ATTEMPT_LOG_FILE

TAIL_BYTES = 64 * 1024  # at most this much of the end of a log is read
TAIL_LINES = 200  # and at most this many lines of it are shown
LINE_CHARS = 2000  # a longer line is cut


@dataclass
class FileTail:
    """The end of a text file: its last lines, and how much came before them."""

    path: str
    exists: bool = False
    size: int = 0
    lines: list[str] = field(default_factory=list)
    skipped_bytes: int = 0
    skipped_lines: bool = False
    error: str = ""

    @property
    def truncated(self) -> bool:
        return bool(self.skipped_bytes) or self.skipped_lines


def _inside_submit_root(path: Path) -> bool:
    try:
        return path.resolve().is_relative_to(Path(settings.CM_SUBMIT_ROOT).resolve())
    except (OSError, ValueError):
        return False


def tail(path: str | Path, *, max_bytes: int = TAIL_BYTES, max_lines: int = TAIL_LINES) -> FileTail:
    """The last ``max_lines`` lines within the last ``max_bytes`` bytes of a file under the submit root."""
    path = Path(path)
    result = FileTail(path=str(path))
    if not _inside_submit_root(path):
        result.error = "This file is not under the submit root (CM_SUBMIT_ROOT): it is not read."
        return result
    try:
        with open(path, "rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            start = max(0, size - max_bytes)
            stream.seek(start)
            data = stream.read(max_bytes)
    except FileNotFoundError:
        return result
    except OSError as exc:
        result.error = f"It could not be read: {exc.strerror or type(exc).__name__}."
        return result
    result.exists, result.size, result.skipped_bytes = True, size, start
    lines = data.decode("utf-8", errors="replace").splitlines()
    if start and lines:
        lines = lines[1:]  # the first line read is only the end of a line
    if len(lines) > max_lines:
        result.skipped_lines = True
        lines = lines[-max_lines:]
    result.lines = [line if len(line) <= LINE_CHARS else line[:LINE_CHARS] + " …" for line in lines]
    return result


def attempt_log_path(submit_dir: str) -> str:
    return str(Path(submit_dir) / ATTEMPT_LOG_FILE) if submit_dir else ""


def attempt_log(submit_dir: str, **limits: int) -> FileTail | None:
    """The end of an attempt's log file (what BPS, ``pipetask qgraph`` and Parsl said); None before it has one."""
    if not submit_dir:
        return None
    return tail(attempt_log_path(submit_dir), **limits)
