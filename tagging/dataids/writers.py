"""Writing data IDs out: JSON, CSV (streamed) and ECSV (what ``pipetask --data-id-table`` reads)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence


def json_chunks(dimensions: Sequence[str], rows: Iterable[Sequence]) -> Iterator[str]:
    """A JSON list of mappings, written piece by piece."""
    yield "["
    first = True
    for row in rows:
        text = json.dumps(dict(zip(dimensions, row, strict=True)))
        yield text if first else ",\n" + text
        first = False
    yield "]\n"


def csv_chunks(dimensions: Sequence[str], rows: Iterable[Sequence], batch: int = 5000) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(dimensions)
    for n, row in enumerate(rows, start=1):
        writer.writerow(row)
        if n % batch == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def ecsv_text(dimensions: Sequence[str], rows: Iterable[Sequence], meta: dict | None = None) -> str:
    """An ECSV table with one typed column per dimension; astropy and pipetask read it."""
    from lsst_adapter.dataids import data_id_table

    table = data_id_table(dimensions, rows)
    if meta:
        table.meta.update(meta)
    out = io.StringIO()
    table.write(out, format="ascii.ecsv")
    return out.getvalue()
