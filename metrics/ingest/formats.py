"""Reading the outside formats into plain measurements, one at a time (streamed, bounded memory).

- ``bundle``: the JSON of an analysis_tools ``MetricMeasurementBundle``
  (``{"<action>": [{"metric", "value", "unit", ...}], "__dataset_identifier": ..., ...}``); the data ID and run
  come beside it. The metric is stored as ``<action>.<name>``, the name without its reference-package prefix
  (``psfMetrics`` + ``demo_pipeline.psf_fwhm`` → ``psfMetrics.psf_fwhm``).
- ``flat``: records in the shape Rubin's Sasquatch dispatcher sends (identifier fields, ``run``,
  ``dataset_type``, ``timestamp``, one field per metric), as a JSON list or JSON lines. An optional ``action``
  field prefixes the metric names as for bundles; an optional ``units`` mapping gives their units.

Every measurement carries ``where`` (``index 3``, ``line 12``, ``psfMetrics[0]``) so a problem names its place.
Every reader is bounded by ``core.limits`` while it streams (depth, strings, row size and elements, decoded
size); a limit passed stops the read with a ``FormatError`` naming it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import IO, Any

from core.limits import LimitExceeded, Limits, first_byte, json_loads, limited_stream, upload_limits

IDENTIFIER_FIELDS = (
    "instrument",
    "exposure",
    "visit",
    "detector",
    "tract",
    "patch",
    "band",
    "skymap",
    "day_obs",
    "physical_filter",
)
# Fields of a flat record that are not metrics.
FLAT_RESERVED = {
    *IDENTIFIER_FIELDS,
    "group",
    "run",
    "dataset_type",
    "timestamp",
    "reference_package",
    "dataset_tag",
    "dataset_id",
    "id",
    "action",
    "units",
    "__dataset_identifier",
}
FORMATS = ("bundle", "flat")


class FormatError(Exception):
    """The input cannot be read at all (not JSON, wrong shape): nothing can be placed."""

    def __init__(self, message: str, where: str = "start of file"):
        super().__init__(message)
        self.where = where

    @classmethod
    def from_limit(cls, exc: LimitExceeded) -> FormatError:
        return cls(exc.reason, exc.where or "file")


@dataclass
class Measurement:
    """One value to place: where it was in the input, metric, value, unit, data ID and provenance."""

    where: str
    metric: str
    value: float | None
    unit: str
    data_id: dict[str, Any]
    run: str = ""
    dataset_type: str = ""
    dataset_id: str = ""
    timestamp: datetime | None = None
    problem: str = ""  # set when the record itself is malformed; the key is in ``problem_key``
    problem_key: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def as_value(raw: Any) -> tuple[float | None, str]:
    """(value, problem): numbers as floats, NaN/inf/null as None; anything else is a problem."""
    if raw is None:
        return None, ""
    if isinstance(raw, bool):
        return None, f"not a number: {raw!r}"
    if isinstance(raw, int | float):
        try:
            number = float(raw)
        except OverflowError:
            return None, f"{str(raw)[:30]}... is out of range (a 64-bit float)"
        return (number if math.isfinite(number) else None), ""
    if isinstance(raw, str):
        text = raw.strip()
        if text.lower() in ("nan", "inf", "+inf", "-inf", "infinity", "-infinity", "null", ""):
            return None, ""
        try:
            number = float(text)
        except ValueError:
            return None, f"not a number: {raw!r}"
        return (number if math.isfinite(number) else None), ""
    # ijson hands out Decimal when use_float is off; be generous with any real number type.
    try:
        number = float(raw)
    except (TypeError, ValueError, OverflowError):
        return None, f"not a number: {type(raw).__name__}"
    return (number if math.isfinite(number) else None), ""


def as_timestamp(raw: Any) -> tuple[datetime | None, str]:
    if raw in (None, ""):
        return None, ""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        try:
            return datetime.fromtimestamp(float(raw), tz=UTC), ""
        except (OverflowError, OSError, ValueError):
            return None, f"not a time: {raw!r}"
    if isinstance(raw, str):
        try:
            value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            try:
                return datetime.fromtimestamp(float(raw), tz=UTC), ""
            except ValueError:
                return None, f"not a time: {raw!r}"
        return (value if value.tzinfo else value.replace(tzinfo=UTC)), ""
    return None, f"not a time: {raw!r}"


def metric_name(action: str, metric: str, reference_package: str = "") -> str:
    """``<action>.<metric without its package prefix>``; either part alone when the other is empty."""
    name = metric.strip()
    if reference_package and name.startswith(reference_package + "."):
        name = name[len(reference_package) + 1 :]
    elif "." in name and not reference_package:
        # analysis_tools names are "<package>.<name>": keep the name only, the action says where it came from.
        name = name.split(".", 1)[1] if action else name
    return f"{action}.{name}" if action else name


def bundle_measurements(
    bundle: Any, *, data_id: Mapping[str, Any], run: str = "", dataset_type: str = "", dataset_id: str = ""
) -> Iterator[Measurement]:
    """The measurements of one bundle (a parsed JSON object)."""
    if not isinstance(bundle, Mapping):
        raise FormatError(f"A metric bundle is a JSON object, not {type(bundle).__name__}.")
    package = bundle.get("__reference_package") or ""
    if not isinstance(package, str):
        package = ""
    timestamp, _ = as_timestamp(bundle.get("__timestamp")) if "__timestamp" in bundle else (None, "")
    data_id = dict(data_id)  # one mapping shared by every value of the bundle (placed once)
    actions = [k for k in bundle if not str(k).startswith("__")]
    if not actions:
        raise FormatError('The bundle holds no action: expected {"<action>": [{"metric": ..., "value": ...}]}.')
    for action in actions:
        rows = bundle[action]
        if not isinstance(rows, list):
            yield Measurement(
                where=str(action), metric=str(action), value=None, unit="", data_id=dict(data_id),
                problem=f"an action holds a list of measurements, not {type(rows).__name__}", problem_key=str(action),
            )  # fmt: skip
            continue
        for i, row in enumerate(rows):
            where = f"{action}[{i}]"
            if not isinstance(row, Mapping) or not isinstance(row.get("metric"), str) or not row["metric"].strip():
                yield Measurement(
                    where=where, metric=str(action), value=None, unit="", data_id=dict(data_id),
                    problem="a measurement is a mapping with a 'metric' name", problem_key="metric",
                )  # fmt: skip
                continue
            value, problem = as_value(row.get("value"))
            unit = row.get("unit") or ""
            yield Measurement(
                where=where,
                metric=metric_name(str(action), row["metric"], package),
                value=value,
                unit=unit if isinstance(unit, str) else str(unit),
                data_id=data_id,
                run=run,
                dataset_type=dataset_type,
                dataset_id=dataset_id,
                timestamp=timestamp,
                problem=problem,
                problem_key="value" if problem else "",
            )


def flat_measurements(record: Any, where: str, *, action: str = "", units: Mapping[str, str] | None = None):
    """The measurements of one flat (Sasquatch-style) record."""
    if not isinstance(record, Mapping):
        yield Measurement(
            where=where, metric="", value=None, unit="", data_id={},
            problem=f"a record is a JSON object, not {type(record).__name__}", problem_key="",
        )  # fmt: skip
        return
    data_id = {k: record[k] for k in IDENTIFIER_FIELDS if k in record and record[k] not in ("", None)}
    timestamp, time_problem = as_timestamp(record.get("timestamp"))
    prefix = record.get("action") or action or ""
    record_units: Mapping[str, Any] = record["units"] if isinstance(record.get("units"), Mapping) else {}
    package = record.get("reference_package") or ""
    metrics = [k for k in record if k not in FLAT_RESERVED]
    if not metrics:
        yield Measurement(
            where=where, metric="", value=None, unit="", data_id=data_id,
            problem="the record has no metric field (only identifier fields)", problem_key="",
        )  # fmt: skip
        return
    for key in metrics:
        value, problem = as_value(record[key])
        unit = record_units.get(key) or (units or {}).get(key) or ""
        yield Measurement(
            where=where,
            metric=metric_name(str(prefix), str(key), str(package)) if prefix else str(key),
            value=value,
            unit=str(unit),
            data_id=data_id,
            run=str(record.get("run") or ""),
            dataset_type=str(record.get("dataset_type") or ""),
            dataset_id=str(record.get("dataset_id") or record.get("id") or ""),
            timestamp=timestamp,
            problem=problem or time_problem,
            problem_key=key if problem else ("timestamp" if time_problem else ""),
        )


def _first_char(stream: IO[bytes]) -> bytes:
    return first_byte(stream)


def read_records(stream: IO[bytes], limits: Limits | None = None) -> Iterator[tuple[str, Any]]:
    """(where, record) of a JSON list (streamed with ijson, scanned against the limits first, each record a
    row) or of JSON lines (each line at most a row's bytes and elements)."""
    import ijson

    limits = limits or upload_limits()
    first = _first_char(stream)
    stream.seek(0)
    if first == b"":
        raise FormatError("The file is empty.")
    if first == b"[":
        index = -1
        try:
            for index, item in enumerate(
                ijson.items(limited_stream(stream, limits, json_rows_at=1), "item", use_float=True)
            ):
                yield f"index {index}", item
        except (ijson.JSONError, UnicodeDecodeError) as exc:
            raise FormatError(f"Malformed JSON after record {index}: {exc}", f"index {index + 1}") from exc
        except LimitExceeded as exc:
            raise FormatError.from_limit(exc) from exc
        return
    if first != b"{":
        raise FormatError(f"Expected a JSON list or JSON lines of records, not something starting with {first!r}.")
    bounded = limited_stream(stream, limits)
    number = 0
    try:
        for line in iter(lambda: bounded.readline(limits.max_row_bytes + 1), b""):
            number += 1
            if len(line) > limits.max_row_bytes:
                raise LimitExceeded(
                    "row_bytes",
                    f"a line longer than {limits.max_row_bytes:,} bytes",
                    where=f"line {number}",
                    limit=limits.max_row_bytes,
                )
            text = line.strip()
            if not text:
                continue
            try:
                yield f"line {number}", json_loads(text, limits, allow_nan=True, row=True)
            except LimitExceeded as exc:
                raise LimitExceeded(exc.kind, exc.description, where=f"line {number}", limit=exc.limit,
                                    setting=exc.setting) from exc  # fmt: skip
            except (ValueError, UnicodeDecodeError) as exc:
                yield f"line {number}", _Bad(f"not valid JSON: {exc}")
    except LimitExceeded as exc:
        raise FormatError.from_limit(exc) from exc


class _Bad:
    """A line that is not JSON: reported by the caller, the following lines still read."""

    def __init__(self, message: str):
        self.message = message


def is_bad(record: Any) -> str:
    return record.message if isinstance(record, _Bad) else ""


def sniff_format(stream: IO[bytes]) -> str:
    """``bundle`` for an object whose keys are actions or ``__`` metadata, else ``flat``."""
    import ijson

    first = _first_char(stream)
    stream.seek(0)
    if first != b"{":
        return "flat"
    try:
        for prefix, event, value in ijson.parse(limited_stream(stream, upload_limits(), json_rows_at=1)):
            if prefix == "" and event == "map_key":
                if str(value).startswith("__"):
                    return "bundle"
            elif event == "start_array" and prefix and "." not in prefix:
                return "bundle"  # a top-level key holding a list: an action
            elif event in ("string", "number", "boolean", "null") and prefix and "." not in prefix:
                return "flat"  # a top-level scalar: a flat record (JSON lines)
    except (ijson.JSONError, UnicodeDecodeError):
        return "flat"  # reported line by line
    except LimitExceeded as exc:
        raise FormatError.from_limit(exc) from exc
    finally:
        stream.seek(0)
    return "flat"


def load_bundle(stream: IO[bytes], limit: int) -> Any:
    """A bundle is one small object (one dataset's metrics): read it whole, up to ``limit`` bytes."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise FormatError(f"A metric bundle may be at most {limit:,} bytes; send many values as flat records.")
    try:
        return json_loads(data, replace(upload_limits(), max_bytes=limit), allow_nan=True)
    except LimitExceeded as exc:
        raise FormatError.from_limit(exc) from exc
    except UnicodeDecodeError as exc:
        raise FormatError(f"The file is not UTF-8 text (bad byte at offset {exc.start}).") from exc
    except json.JSONDecodeError as exc:
        raise FormatError(f"Not valid JSON: {exc.msg}", f"line {exc.lineno}, column {exc.colno}") from exc
    except ValueError as exc:  # NaN, Infinity, numbers beyond 64 bits
        raise FormatError(f"Not valid JSON: {exc}") from exc
