"""Campaign A against campaign B on the same data IDs, by merging sorted arrays instead of a SQL join.

Joining two campaigns of a million values each on the data ID took PostgreSQL two to three seconds here
before anything was drawn. So, with the other rollups, each (campaign, metric) keeps a ``MetricPairIndex``: its
values as packed columns (a 64-bit hash of the data ID, the value's id, the value, and the columns the
dashboard filters on: night, detector, step, band), sorted by the hash. A comparison reads the two indexes
(one statement: 24 bytes a value, more for the filters used), filters them with numpy, pairs equal hashes with
``searchsorted`` (every A value with every B value of the same data ID, as the SQL join would), and reads
back from the values only the data ID keys of the pairs it shows (the sample and the largest changes),
checking on the way that the paired keys really are equal.

What a 64-bit hash leaves open: two different data IDs of the two campaigns with the same hash would be
counted as a pair. Among two million data IDs the chance is about one in ten million; the pairs that are
shown are checked against the real keys and dropped if they differ, so a collision can only move the counts
by one, never put a wrong data ID on the page.

PostgreSQL only (``hashtextextended``, binary COPY); SQLite uses ``portable.comparison``. A (campaign,
metric) of more than ``MAX_ROWS`` values gets no index and is compared in SQL (``selectors``).
"""

from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import psycopg
from django.db import connection

from .models import MetricPairIndex, MetricValue

if TYPE_CHECKING:
    from .selectors import Comparison, MetricQuery

MV = MetricValue._meta.db_table
PAIRS = MetricPairIndex._meta.db_table
PROBE_TEXT = "campaign-manager pair index"
NONE32 = -(2**31)  # day_obs or detector not known
MAX_ROWS = 50_000_000  # 8 bytes a value a column: far below PostgreSQL's 1 GB a field
TIE_LIMIT = 1_000  # at most this many values tied at the cut of the largest changes are ordered by data ID

_COLUMNS = {  # column -> little-endian dtype of its packed numbers
    "keys": "<i8",
    "ids": "<i8",
    "values": "<f8",
    "day_obs": "<i4",
    "detectors": "<i4",
    "steps": "<i8",
    "bands": "<i2",
}
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8


def build(campaign_id: int, metric: str, band_names: list[str]) -> int | None:
    """(Re)build the pair index of one (campaign, metric) in the caller's transaction; ``band_names`` are the
    bands among its values. Returns how many values it holds (None: too many, no index kept)."""
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {PAIRS} WHERE campaign_id = %s AND metric = %s", [campaign_id, metric])  # noqa: S608
        cursor.execute(f"SELECT count(*) FROM {MV} WHERE campaign_id = %s AND metric = %s", [campaign_id, metric])  # noqa: S608
        if cursor.fetchone()[0] > MAX_ROWS:
            return None
        # Each column packed by PostgreSQL into one bytea (big-endian numbers; the aggregates of one
        # statement see the rows in the same order), read in binary: no Python object per value.
        sql = (
            "SELECT string_agg(int8send(hashtextextended(data_id_key, 0)), ''), string_agg(int8send(id), ''), "  # noqa: S608
            "string_agg(float8send(COALESCE(value, 'NaN'::float8)), ''), "
            f"string_agg(int4send(COALESCE(day_obs, {NONE32})), ''), "
            f"string_agg(int4send(COALESCE(detector, {NONE32})), ''), "
            "string_agg(int8send(COALESCE(step_id, -1)::bigint), ''), "
            "string_agg(int2send(COALESCE(array_position(%s::varchar[], band), 0)::smallint), '') "
            f"FROM {MV} WHERE campaign_id = %s AND metric = %s"
        )
        (blobs,) = _fetch_binary(sql, [list(band_names), campaign_id, metric])  # an aggregate: one row
        columns = {
            name: np.frombuffer(blob or b"", dtype=">" + dtype[1:])
            for (name, dtype), blob in zip(_COLUMNS.items(), blobs, strict=True)
        }
        order = np.lexsort((columns["ids"], columns["keys"]))  # by hash, then id: the same order on every build
        packed = [columns[name][order].astype(dtype).tobytes() for name, dtype in _COLUMNS.items()]
        rows = len(order)
        cursor.execute("SELECT hashtextextended(%s, 0)", [PROBE_TEXT])
        probe = cursor.fetchone()[0]
        names = ["campaign_id", "metric", "rows", "probe", *_COLUMNS, "band_names"]
        fields = [
            struct.pack(">q", campaign_id),
            metric.encode(),
            struct.pack(">q", rows),
            struct.pack(">q", probe),
            *packed,
            b"\x01" + _json(band_names),  # jsonb's binary form: a version byte, then the text
        ]
        tuple_ = struct.pack(">h", len(fields)) + b"".join(struct.pack(">i", len(f)) + f for f in fields)
        with cursor.cursor.copy(f"COPY {PAIRS} ({', '.join(names)}) FROM STDIN WITH (FORMAT binary)") as copy:
            copy.write(_COPY_HEADER + tuple_ + b"\xff\xff")
    return rows


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _fetch_binary(sql: str, params: list[Any]) -> list[tuple]:
    """Rows of ``sql`` through a plain (server-binding) cursor on Django's connection, in its transaction:
    parameters and results travel in binary (bytea as bytes, not hexadecimal text; an id array as packed
    integers, not a literal). Logged as Django logs its own queries (debug, the tests' query counts)."""
    connection.ensure_connection()
    started = time.perf_counter()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, binary=True)
        rows = cursor.fetchall()
    if connection.queries_logged:
        connection.queries_log.append({"sql": sql, "time": f"{time.perf_counter() - started:.3f}"})
    return rows


@dataclass
class Side:
    """One campaign's values of the metric that pass the filters, in hash order."""

    keys: np.ndarray
    ids: np.ndarray
    values: np.ndarray


def _load(query: MetricQuery) -> dict[int, Side] | None:
    """The filtered sides of the query's two campaigns from their pair indexes; None if one has none (too
    many values) or was built by another hash function (a PostgreSQL upgrade: rebuilt on the next refresh)."""
    wanted = ["keys", "ids", "values"]
    if query.night_from is not None or query.night_to is not None:
        wanted.append("day_obs")
    if query.detector is not None:
        wanted.append("detectors")
    if query.step:
        wanted.append("steps")
    if query.band:
        wanted.append("bands")
    ids = query.campaign_ids[:2]
    sql = (
        f"SELECT campaign_id, probe = hashtextextended(%s, 0), band_names, {', '.join(wanted)} "  # noqa: S608
        f"FROM {PAIRS} WHERE campaign_id = ANY(%s) AND metric = %s"
    )
    found = _fetch_binary(sql, [PROBE_TEXT, ids, query.metric])
    if len({row[0] for row in found if row[1]}) != len(set(ids)):
        return None
    steps: dict[int, set[int]] = {}
    if query.step:
        from campaigns.models import Step

        for campaign_id, step_id in Step.objects.filter(campaign_id__in=ids, name=query.step).values_list(
            "campaign_id", "pk"
        ):
            steps.setdefault(campaign_id, set()).add(step_id)
    sides = {}
    for campaign_id, _, band_names, *blobs in found:
        if isinstance(band_names, str):  # jsonb as text, where the connection's loaders say so
            band_names = json.loads(band_names)
        cols = {name: np.frombuffer(blob, dtype=_COLUMNS[name]) for name, blob in zip(wanted, blobs, strict=True)}
        keep = np.ones(len(cols["keys"]), dtype=bool)
        if query.band:
            code = band_names.index(query.band) + 1 if query.band in band_names else -1
            keep &= cols["bands"] == code
        if query.night_from is not None:
            keep &= (cols["day_obs"] != NONE32) & (cols["day_obs"] >= query.night_from)
        if query.night_to is not None:
            keep &= (cols["day_obs"] != NONE32) & (cols["day_obs"] <= query.night_to)
        if query.step:
            keep &= np.isin(cols["steps"], np.fromiter(steps.get(campaign_id, ()), dtype=np.int64))
        if query.detector is not None:
            keep &= (cols["detectors"] != NONE32) & (cols["detectors"] == query.detector)
        values = cols["values"]
        if query.value_min is not None:
            keep &= values >= query.value_min  # NaN (a null value) never passes, as in SQL
        if query.value_max is not None:
            keep &= values <= query.value_max
        if keep.all():
            sides[campaign_id] = Side(cols["keys"], cols["ids"], values)
        else:
            sides[campaign_id] = Side(cols["keys"][keep], cols["ids"][keep], values[keep])
    return sides


def _distinct(keys: np.ndarray) -> bool:
    return len(keys) < 2 or bool((keys[1:] != keys[:-1]).all())


def _runs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For sorted ``keys``: the distinct keys, where each run of equal keys starts, and its length."""
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    lengths = np.diff(np.append(starts, len(keys)))
    return keys[starts], starts, lengths


def _matches(keys_a: np.ndarray, keys_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For sorted distinct keys: the positions in A and in B of the keys both hold."""
    if not len(keys_a) or not len(keys_b):
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    at = np.searchsorted(keys_b, keys_a)
    inside = np.flatnonzero(at < len(keys_b))
    found = inside[keys_b[at[inside]] == keys_a[inside]]
    return found, at[found]


def _join(a: Side, b: Side) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Index pairs (into A, into B) of the values with equal keys, every A value with every B value of the
    same key, in key order; and how many values of A and of B found no partner."""
    if _distinct(a.keys) and _distinct(b.keys):  # one value per data ID on each side: the usual case
        ia, ib = _matches(a.keys, b.keys)
        return ia, ib, len(a.keys) - len(ia), len(b.keys) - len(ib)
    keys_a, starts_a, lengths_a = _runs(a.keys)
    keys_b, starts_b, lengths_b = _runs(b.keys)
    run_a, run_b = _matches(keys_a, keys_b)
    na, nb = lengths_a[run_a], lengths_b[run_b]
    per = na * nb
    run = np.repeat(np.arange(len(per)), per)
    within = np.arange(int(per.sum())) - np.repeat(np.cumsum(per) - per, per)
    ia = starts_a[run_a][run] + within // nb[run]
    ib = starts_b[run_b][run] + within % nb[run]
    return ia, ib, len(a.keys) - int(na.sum()), len(b.keys) - int(nb.sum())


def compare(query: MetricQuery, cap: int, top: int, bins: int) -> Comparison | None:
    """``selectors.metric_comparison`` from the pair indexes (None when an index is missing: use SQL)."""
    from .selectors import Comparison, _pair, difference_histogram, difference_range

    a, b = query.campaigns[0], query.campaigns[1]
    sides = _load(query)
    if sides is None:
        return None
    side_a, side_b = sides[a.pk], sides[b.pk]
    ia, ib, only_a, only_b = _join(side_a, side_b)
    va, vb = side_a.values[ia], side_b.values[ib]
    d = vb - va  # NaN where either value is null
    finite = ~np.isnan(d)
    paired, nulls = len(d), int(len(d) - finite.sum())
    span, counts = None, [0] * bins
    if finite.any():
        span = lo, hi = difference_range(float(d[finite].min()), float(d[finite].max()))
        # PostgreSQL's width_bucket, with the values at or above the top edge in the last bin.
        bucket = np.floor(bins * ((d[finite] - lo) / (hi - lo))).astype(np.int64)
        counts = np.bincount(np.clip(bucket, 0, bins - 1), minlength=bins).tolist()
    largest = _largest(np.flatnonzero(finite), d, top)
    step = max(1, -(-paired // cap))
    sample = np.arange(step - 1, paired, step)  # every step-th pair, evenly over the data IDs
    shown = np.concatenate((largest, sample))
    ids_a, ids_b = side_a.ids[ia[shown]].tolist(), side_b.ids[ib[shown]].tolist()
    keys = _keys(ids_a, ids_b)
    values_a, values_b = _floats(va[shown]), _floats(vb[shown])
    points = [
        _pair(a.butler_repo_id, key, values_a[k], values_b[k]) if (key := keys.get((x, y))) is not None else None
        for k, (x, y) in enumerate(zip(ids_a, ids_b, strict=True))
    ]
    top_pairs = [p for p in points[: len(largest)] if p is not None]
    top_pairs.sort(key=lambda p: (-abs(p.diff or 0), p.data_id_key))
    return Comparison(
        pairs=[p for p in points[len(largest) :] if p is not None],
        paired=paired,
        only_a=only_a,
        only_b=only_b,
        differences=difference_histogram(f"{b.name} − {a.name}", span, counts, nulls, bins),
        largest=top_pairs[:top],
    )


def _largest(candidates: np.ndarray, d: np.ndarray, top: int) -> np.ndarray:
    """The pairs (indexes into ``d``) of the ``top`` largest absolute differences, and every pair tied with
    the smallest of them when there are at most ``TIE_LIMIT`` such ties (the caller orders ties by data ID);
    beyond that, ties at the cut are taken in hash order."""
    if top <= 0 or not len(candidates):
        return np.array([], dtype=np.int64)
    size = np.abs(d[candidates])
    if len(candidates) <= top:
        return candidates
    cut = np.partition(size, len(size) - top)[len(size) - top]
    above = candidates[size > cut]
    tied = candidates[size == cut]
    if len(tied) > TIE_LIMIT:
        tied = tied[: top - len(above)]
    return np.concatenate((above, tied))


def _floats(values: np.ndarray) -> list[float | None]:
    return [None if v != v else v for v in values.tolist()]  # NaN (a null value) as None


def _keys(ids_a: list[int], ids_b: list[int]) -> dict[tuple[int, int], str]:
    """The data ID key of each shown pair, by (A's value id, B's value id); a pair whose two keys differ (a
    hash collision) is left out."""
    wanted = sorted(set(ids_a) | set(ids_b))
    key_of = dict(_fetch_binary(f"SELECT id, data_id_key FROM {MV} WHERE id = ANY(%s::bigint[])", [wanted]))  # noqa: S608
    found = {}
    for id_a, id_b in zip(ids_a, ids_b, strict=True):
        key = key_of.get(id_a)
        if key is not None and key == key_of.get(id_b):
            found[(id_a, id_b)] = key
    return found
