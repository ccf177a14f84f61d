"""The memory a hostile input costs: each runs through the reader an upload uses, in a fresh Python process
(Django set up, the reader warmed on a small valid input), and the process's peak RSS (VmHWM, reset after the
warm-up) may not grow by more than ``BUDGET`` while it is refused. Before core.limits, the first of these (200 kB of ``[``) took 23 GB.

The files are made on disk, so the test process itself never holds them.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.table import Table
from django.conf import settings

BUDGET_MB = 100


@pytest.fixture(autouse=True)
def _remove_the_files(tmp_path):
    """The inputs are up to 200 MB: gone after each test, not kept with pytest's last temporary folders."""
    yield
    for path in tmp_path.iterdir():
        if path.is_file():
            path.unlink()


# Runs in the child: warm the reader, note the peak RSS, run the hostile input, note it again.
CHILD = r"""
import io, json, os, sys
import django
django.setup()

reader, path = sys.argv[1], sys.argv[2]

def run(reader, path):
    if reader == "dataids-json":
        from tagging.dataids.readers import read_json
        with open(path, "rb") as f:
            for _ in read_json(f)[1]:
                pass
    elif reader == "dataids-csv":
        from tagging.dataids.readers import read_csv
        with open(path, "rb") as f:
            for _ in read_csv(f):
                pass
    elif reader in ("dataids-fits", "dataids-parquet"):
        from tagging.dataids.readers import read_astropy
        for _ in read_astropy(path, reader.split("-")[1]):
            pass
    elif reader == "metrics":
        from metrics.ingest.formats import read_records
        with open(path, "rb") as f:
            for _ in read_records(f):
                pass
    elif reader == "flags":
        from tagging.services.flags import _read_export
        with open(path, "rb") as f:
            _read_export(f)
    elif reader == "json-body":
        from core.parsers import JSONParser
        with open(path, "rb") as f:
            JSONParser().parse(f, "application/json", {})
    elif reader == "unbounded-json":  # the control: what an unbounded reader costs
        with open(path, "rb") as f:
            json.loads(f.read())
    elif reader == "yaml":
        from campaigns.yaml_io import parse_campaign_yaml
        with open(path, "rb") as f:
            parse_campaign_yaml(f.read())

def peak_mb():
    # VmHWM: this process's peak RSS since exec. (ru_maxrss is not: Linux carries it over fork and exec, so a
    # child of a large pytest process would start at its parent's peak and never seem to grow.)
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")

warm = {"dataids-json": b'[{"exposure": 1}]', "dataids-csv": b"exposure\n1\n", "metrics": b'[{"a": 1}]',
        "flags": b'[{"a": 1}]', "json-body": b'{"a": [1]}', "yaml": b"name: x\n"}
if reader in warm:
    with open(path + ".warm", "wb") as f:
        f.write(warm[reader])
    run(reader, path + ".warm")
try:
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # the peak starts again from the current RSS (else the warm-up's peak stays)
except OSError:
    pass
before = peak_mb()
try:
    run(reader, path)
    message = ""
except Exception as exc:  # the reader's own error type: ReadError, FormatError, InputError, ParseError, ...
    message = getattr(exc, "message_dict", None) or getattr(exc, "detail", None) or str(exc)
print(json.dumps({"before": before, "after": peak_mb(), "message": str(message)}))
"""


def _measure(reader: str, path: Path, **env: str) -> dict:
    child_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "x"),
        "DATABASE_URL": f"sqlite:///{path.parent / 'unused.sqlite3'}",
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-c", CHILD, reader, str(path)],
        cwd=settings.BASE_DIR,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _write(path: Path, *parts: bytes, repeat: tuple[bytes, int] | None = None, tail: bytes = b"") -> Path:
    with open(path, "wb") as out:
        for part in parts:
            out.write(part)
        if repeat is not None:
            block, times = repeat
            chunk = block * max(1, (1 << 20) // len(block))
            per_chunk = len(chunk) // len(block)
            for _ in range(times // per_chunk):
                out.write(chunk)
            out.write(block * (times % per_chunk))
        out.write(tail)
    return path


def test_the_measurement_sees_an_unbounded_reader_grow_past_the_budget(tmp_path):
    # The control, so the budget below can fail: json.loads of 3 million empty lists (9 MB) grows the peak
    # RSS by more than the budget (64 bytes a list).
    path = _write(tmp_path / "lists.json", b"[", repeat=(b"[],", 3_000_000), tail=b"[]]")
    result = _measure("unbounded-json", path)
    assert result["after"] - result["before"] > BUDGET_MB, result


def assert_bounded(result: dict, *expected: str) -> None:
    grown = result["after"] - result["before"]
    print(f"peak RSS +{grown:.1f} MB: {result['message'][:100]}")  # shown with -s (docs/security.md)
    assert grown < BUDGET_MB, f"peak RSS grew by {grown:.0f} MB ({result})"
    for part in expected:
        assert part in result["message"], (part, result["message"])


DEEP = 100_000


@pytest.mark.parametrize("reader", ["dataids-json", "metrics", "flags", "json-body"])
def test_json_nested_100000_deep_is_refused_within_the_memory_budget(tmp_path, reader):
    path = _write(tmp_path / "deep.json", b"[" * DEEP, b"]" * DEEP)
    assert_bounded(_measure(reader, path), "nested deeper than 32 levels", "CM_INPUT_MAX_DEPTH")


def test_a_200_mb_string_is_refused_within_the_memory_budget(tmp_path):
    path = _write(tmp_path / "string.json", b'[{"exposure": "', repeat=(b"x", 200 << 20), tail=b'"}]')
    assert_bounded(_measure("dataids-json", path), "a string longer than 65,536 bytes")


def test_a_200_mb_line_without_newline_is_refused_within_the_memory_budget(tmp_path):
    path = _write(tmp_path / "line.csv", b"exposure,detector\n", repeat=(b"1", 200 << 20))
    assert_bounded(_measure("dataids-csv", path), "a line longer than 1,048,576 characters")


def test_a_row_of_50_million_elements_is_refused_within_the_memory_budget(tmp_path):
    path = _write(tmp_path / "many.json", b'[{"exposure": [', repeat=(b"0,", 50_000_000), tail=b"0]}]")
    assert_bounded(_measure("dataids-json", path), "a row of more than 10,000 elements")


@pytest.mark.parametrize("reader", ["flags", "json-body"])
def test_a_document_of_millions_of_empty_objects_is_refused_within_the_memory_budget(tmp_path, reader):
    # 5 MB is the request limit; 3 bytes an element: 1.7 million objects, refused at 1,000,000.
    path = _write(tmp_path / "objects.json", b"[", repeat=(b"{},", 1_700_000), tail=b"{}]")
    assert_bounded(_measure(reader, path), "more than 1,000,000 elements")


def test_a_yaml_alias_bomb_is_refused_within_the_memory_budget(tmp_path):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for name, previous in zip("bcdefghij", "abcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    lines.append("name: [*j, *j, *j, *j, *j, *j, *j, *j, *j]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size < 1000
    assert_bounded(_measure("yaml", path), "an alias (*a) is not accepted")


def test_a_gzip_bomb_is_refused_within_the_memory_budget(tmp_path):
    out = io.BytesIO()
    Table({"exposure": np.arange(3)}).write(out, format="fits")
    path = tmp_path / "bomb.fits"
    with gzip.open(path, "wb", compresslevel=1) as bomb:
        bomb.write(out.getvalue())
        zeros = b"\0" * (1 << 20)
        for _ in range(1024):  # 1 GB
            bomb.write(zeros)
    assert path.stat().st_size < 5 << 20
    result = _measure("dataids-fits", path, CM_DATAID_UPLOAD_MAX_BYTES=str(64 << 20))
    assert_bounded(result, "(gzip) decompresses to more than 67,108,864 bytes")


def test_a_dictionary_encoded_parquet_bomb_is_refused_within_the_memory_budget(tmp_path):
    # One 1 kB value in 2 million rows: a small file, 2 GB once decoded; refused at 256 MB decoded, while the
    # memory it holds stays that of one batch and pyarrow's pool (about 65 MB, whatever the limit).
    value = pa.DictionaryArray.from_arrays(pa.array(np.zeros(2_000_000, dtype=np.int32)), pa.array(["x" * 1000]))
    path = tmp_path / "bomb.parquet"
    pq.write_table(pa.table({"exposure": value}), path, compression="zstd")
    assert path.stat().st_size < 5 << 20
    result = _measure("dataids-parquet", path, CM_DATAID_UPLOAD_MAX_BYTES=str(256 << 20))
    assert_bounded(result, "bytes once decoded", "CM_DATAID_UPLOAD_MAX_BYTES")
