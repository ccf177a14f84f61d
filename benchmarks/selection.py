"""Selection benchmark: a selection combining three tag tables (10,000,000 rows in all), a junk-flag
exclusion and a Butler ``where`` expression over 1,000,000 mirrored exposures, counted as the
selection builder counts it, against the same selection written by hand in SQL, in the same run.

    .venv/bin/python benchmarks/run.py --only selection [--repeat N]

The data are built once (cached in the database, rebuilt when ``DATA_VERSION`` changes) with
``generate_series``: the model's indexes are dropped during the load and rebuilt after it with their
own definitions. Goals: p95 under 300 ms, and at most 1.5x the hand-written query.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

DATA_VERSION = 1
REPO_LABEL = f"bench-selection-v{DATA_VERSION}"
INSTRUMENT = "BenchCam"
NIGHTS = 1_000
PER_NIGHT = 1_000  # 1,000,000 exposures
DETECTORS = 9  # mirror detectors 0..8; the per-detector tag table covers 0..7 (8 rows per exposure)
TAGGED_DETECTORS = 8
USER = "bench-selection"
GOAL_P95_MS = 300.0
GOAL_RATIO = 1.5
FIRST_NIGHT = "2023-01-01"

# (name, key dimensions, columns (name, type), rows, SQL of the values JSON from exposure e and detector d)
TABLES = [
    (
        "bench-seeing",
        ["instrument", "exposure"],
        [("seeing", "float"), ("dome_open", "bool"), ("quality", "enum")],
        "jsonb_build_object('c1', round((0.4 + (hashint4((e.id)::int) & 1023) / 512.0)::numeric, 3), "
        "'c2', (hashint4((e.id + 7)::int) & 15) = 0, 'c3', (ARRAY['good','ok','bad'])[1 + (hashint4((e.id + 3)::int) & 1) "
        "+ ((hashint4((e.id + 5)::int) & 7) = 0)::int])",
    ),
    (
        "bench-sky",
        ["instrument", "exposure"],
        [("sky_level", "float"), ("note", "string")],
        "jsonb_build_object('c1', (hashint4((e.id + 11)::int) & 4095)::float / 100.0, 'c2', 'sky ' || mod(e.id, 97))",
    ),
    (
        "bench-psf",
        ["instrument", "exposure", "detector"],
        [("ellipticity", "float"), ("bad_amp", "bool")],
        "jsonb_build_object('c1', (hashint4((e.id * 16 + d.n)::int) & 1023)::float / 2048.0, "
        "'c2', (hashint4((e.id * 16 + d.n + 1)::int) & 63) = 0)",
    ),
]

# Scenarios: (label, first night, last night); the where expression narrows band and nights.
SCENARIOS = [("one month, band r", 20230601, 20230630), ("one year, band r", 20230101, 20231231)]


def where_of(day_min: int, day_max: int) -> str:
    return f"band = 'r' AND exposure.day_obs >= {day_min} AND exposure.day_obs <= {day_max}"


def recipe(where: str) -> dict[str, Any]:
    return {
        "repo": REPO_LABEL,
        "dimensions": ["exposure"],
        "terms": [
            {"mode": "include", "where": where},
            {"mode": "include", "tag_table": "bench-seeing", "condition": "seeing < 1.0 AND NOT dome_open"},
            {"mode": "include", "tag_table": "bench-sky", "condition": "sky_level < 30"},
            {"mode": "exclude", "tag_table": "bench-psf", "condition": "ellipticity > 0.45 OR bad_amp"},
            {"mode": "exclude", "flags": ["junk"]},
        ],
    }


def hand_sql(repo_id: int, tables: dict[str, int], day_min: int, day_max: int) -> tuple[str, list[Any]]:
    """The same selection as a person would write it against these tables."""
    return (
        "SELECT COUNT(*) FROM tagging_exposure e "
        "JOIN tagging_tagrow a ON a.table_id = %s AND a.exposure = e.exposure_id "
        "JOIN tagging_tagrow b ON b.table_id = %s AND b.exposure = e.exposure_id "
        "WHERE e.repo_id = %s AND e.instrument = %s AND e.band = 'r' AND e.day_obs BETWEEN %s AND %s "
        "AND (a.values->>'c1')::float8 < 1.0 AND NOT (a.values->>'c2')::boolean "
        "AND (b.values->>'c1')::float8 < 30 "
        "AND NOT EXISTS (SELECT 1 FROM tagging_tagrow c WHERE c.table_id = %s AND c.exposure = e.exposure_id "
        "  AND ((c.values->>'c1')::float8 > 0.45 OR (c.values->>'c2')::boolean)) "
        "AND NOT EXISTS (SELECT 1 FROM tagging_exposureflag f WHERE f.exposure = e.exposure_id "
        "  AND f.instrument = e.instrument AND f.is_valid AND f.exposure_flag = 'junk')",
        [
            tables["bench-seeing"],
            tables["bench-sky"],
            repo_id,
            INSTRUMENT,
            day_min,
            day_max,
            tables["bench-psf"],
        ],
    )


# --- data --------------------------------------------------------------------------------------------


def _indexes(cursor, table: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(constraint name, definition) of unique constraints, and CREATE INDEX statements of plain indexes."""
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'u'",
        [table],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexname NOT IN "
        "(SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
        [table, table],
    )
    return constraints, [row[0] for row in cursor.fetchall()]


def _load(cursor, table: str, statements: list[tuple[str, list]]) -> None:
    """Run the INSERTs with the table's secondary indexes dropped, then rebuild them as they were."""
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # Django's deferred FK checks would block the ALTER TABLE
    constraints, indexes = _indexes(cursor, table)
    for name, _ in constraints:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for definition in indexes:
        cursor.execute("DROP INDEX " + definition.split(" INDEX ", 1)[1].split(" ON ", 1)[0])
    for sql, params in statements:
        cursor.execute(sql, params)
    for name, definition in constraints:
        cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    for definition in indexes:
        cursor.execute(definition)
    cursor.execute(f"ANALYZE {table}")


def build() -> dict[str, Any]:
    """The synthetic repo, tables and flags (once; later runs find them)."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from tagging.models import ButlerRepo, TagColumn, TagTable
    from tagging.services import butler_repo_upsert

    User = get_user_model()
    user, _ = User.objects.get_or_create(username=USER, defaults={"is_superuser": True, "is_staff": True})
    repo = ButlerRepo.objects.filter(label=REPO_LABEL).first()
    if repo is not None and repo.mirror_synced is not None:
        tables = dict(TagTable.objects.filter(repo=repo).values_list("name", "pk"))
        return {"repo_id": repo.pk, "tables": tables, "built_seconds": 0.0, "user_id": user.pk}
    started = time.perf_counter()
    with transaction.atomic():
        if repo is None:
            repo = butler_repo_upsert(label=REPO_LABEL, config_uri="/nonexistent/bench", default_instrument=INSTRUMENT)
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM tagging_tagrow WHERE table_id IN (SELECT id FROM tagging_tagtable WHERE repo_id = %s)",
                [repo.pk],
            )
            cursor.execute("DELETE FROM tagging_exposure WHERE repo_id = %s", [repo.pk])
            cursor.execute("DELETE FROM tagging_exposureflag WHERE repo_id = %s", [repo.pk])
            cursor.execute("DELETE FROM tagging_detector WHERE repo_id = %s", [repo.pk])
        TagTable.objects.filter(repo=repo).delete()
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO tagging_detector (repo_id, instrument, detector_id, full_name, raft, purpose) "
                "SELECT %s, %s, n, 'R00_S' || n, 'R00', 'SCIENCE' FROM generate_series(0, %s) AS n",
                [repo.pk, INSTRUMENT, DETECTORS - 1],
            )
            night = f"to_char(date '{FIRST_NIGHT}' + (g / {PER_NIGHT}), 'YYYYMMDD')::int"
            _load(
                cursor,
                "tagging_exposure",
                [
                    (
                        "INSERT INTO tagging_exposure (repo_id, instrument, exposure_id, obs_id, day_obs, seq_num, "
                        "physical_filter, band, observation_type, observation_reason, target_name, science_program, "
                        "exposure_time, visit_id, synced) "
                        f"SELECT %s, %s, {night}::bigint * 100000 + mod(g, {PER_NIGHT}) + 1, "
                        f"'BC_O_' || {night} || '_' || lpad((mod(g, {PER_NIGHT}) + 1)::text, 6, '0'), {night}, "
                        f"mod(g, {PER_NIGHT}) + 1, 'BenchCam-' || b.band, b.band, 'science', 'survey', 'FIELD-' || mod(g, 50), "
                        f"'bench', 30.0, {night}::bigint * 100000 + mod(g, {PER_NIGHT}) + 1, now() "
                        f"FROM generate_series(0, {NIGHTS * PER_NIGHT - 1}) AS g, "
                        "LATERAL (SELECT (ARRAY['u','g','r','i','z','y'])[1 + mod(hashint4((g)::int) & 2147483647, 6)] AS band) b",
                        [repo.pk, INSTRUMENT],
                    )
                ],
            )
            cursor.execute("ANALYZE tagging_exposure")
        tables: dict[str, int] = {}
        statements = []
        for name, dims, columns, values_sql in TABLES:
            table = TagTable.objects.create(
                name=name,
                repo=repo,
                owner=user,
                key_dimensions=dims,
                purpose="benchmark",
                visibility="public",
                next_column_key=len(columns) + 1,
            )
            for i, (column, ctype) in enumerate(columns, start=1):
                TagColumn.objects.create(
                    table=table,
                    key=f"c{i}",
                    name=column,
                    type=ctype,
                    position=i,
                    enum_values=["good", "ok", "bad"] if ctype == "enum" else [],
                )
            tables[name] = table.pk
            if "detector" in dims:
                source = f"tagging_exposure e CROSS JOIN generate_series(0, {TAGGED_DETECTORS - 1}) AS d(n)"
                key = "'instrument=' || e.instrument || ',exposure=' || e.exposure_id || ',detector=' || d.n"
                detector = "d.n"
            else:
                source = "tagging_exposure e"
                key = "'instrument=' || e.instrument || ',exposure=' || e.exposure_id"
                detector = "NULL"
            statements.append(
                (
                    "INSERT INTO tagging_tagrow (table_id, key, instrument, exposure, detector, day_obs, band, "
                    "values, created, updated, updated_by_id) "
                    f"SELECT %s, {key}, e.instrument, e.exposure_id, {detector}, e.day_obs, e.band, {values_sql}, "
                    f"now(), now(), %s FROM {source} WHERE e.repo_id = %s",
                    [table.pk, user.pk, repo.pk],
                )
            )
        with connection.cursor() as cursor:
            _load(cursor, "tagging_tagrow", statements)
            _load(
                cursor,
                "tagging_exposureflag",
                [
                    (
                        "INSERT INTO tagging_exposureflag (id, repo_id, instrument, obs_id, day_obs, seq_num, exposure, "
                        "message_text, level, tags, urls, user_id, user_agent, is_human, is_valid, exposure_flag, date_added) "
                        "SELECT gen_random_uuid(), e.repo_id, e.instrument, e.obs_id, e.day_obs, e.seq_num, e.exposure_id, "
                        "'benchmark flag', 20, '[]', '[]', 'bench', '', true, (hashint4((e.id + 31)::int) & 7) <> 0, "
                        "CASE WHEN (hashint4((e.id + 17)::int) & 1) = 0 THEN 'junk' ELSE 'questionable' END, now() "
                        "FROM tagging_exposure e WHERE e.repo_id = %s AND (hashint4((e.id + 13)::int) & 31) = 0",
                        [repo.pk],
                    )
                ],
            )
            for pk in tables.values():
                cursor.execute(
                    "UPDATE tagging_tagtable SET row_count = (SELECT COUNT(*) FROM tagging_tagrow WHERE table_id = %s) WHERE id = %s",
                    [pk, pk],
                )
        ButlerRepo.objects.filter(pk=repo.pk).update(mirror_synced=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    return {"repo_id": repo.pk, "tables": tables, "built_seconds": time.perf_counter() - started, "user_id": user.pk}


# --- measuring ---------------------------------------------------------------------------------------


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def run(repeat: int = 30) -> dict[str, Any]:
    """Build (if needed) and measure every scenario; times in milliseconds."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from tagging.selection.services import selection_count

    info = build()
    user = get_user_model().objects.get(pk=info["user_id"])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT COUNT(*) FROM tagging_exposure WHERE repo_id = %s), "
            "(SELECT COUNT(*) FROM tagging_tagrow WHERE table_id = ANY(%s)), "
            "(SELECT COUNT(*) FROM tagging_exposureflag WHERE repo_id = %s)",
            [info["repo_id"], list(info["tables"].values()), info["repo_id"]],
        )
        exposures, tag_rows, flags = cursor.fetchone()
    scenarios = []
    for label, day_min, day_max in SCENARIOS:
        where = where_of(day_min, day_max)
        the_recipe = recipe(where)
        sql, params = hand_sql(info["repo_id"], info["tables"], day_min, day_max)

        def ours(the_recipe=the_recipe) -> int:
            return selection_count(user=user, recipe=the_recipe, per_term=False, preview=False)["count"]

        def hand(sql=sql, params=params, jit=True) -> int:
            with transaction.atomic(), connection.cursor() as cursor:
                if not jit:
                    cursor.execute("SET LOCAL jit = off")
                cursor.execute(sql, params)
                return cursor.fetchone()[0]

        for _ in range(3):  # warm: caches, the Butler's where parser
            ours_count, hand_count = ours(), hand()
            hand(jit=False)
        if ours_count != hand_count:
            raise SystemExit(f"{label}: the selection counts {ours_count}, the hand-written SQL {hand_count}")
        ours_ms: list[float] = []
        hand_jit_ms: list[float] = []
        hand_nojit_ms: list[float] = []
        for _ in range(repeat):  # interleaved, so all three see the same machine load
            t = time.perf_counter()
            ours()
            ours_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            hand()
            hand_jit_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            hand(jit=False)
            hand_nojit_ms.append((time.perf_counter() - t) * 1000)
        # The baseline is the faster way to run the hand-written query (the selection runs without JIT).
        hand_ms = min(hand_jit_ms, hand_nojit_ms, key=statistics.median)
        t = time.perf_counter()
        full = selection_count(user=user, recipe=the_recipe)
        full_ms = (time.perf_counter() - t) * 1000
        scenarios.append(
            {
                "label": label,
                "where": where,
                "count": ours_count,
                "start": full["start"],
                "after_where": full["terms"][0]["after"],
                "ours_p50": statistics.median(ours_ms),
                "ours_p95": _pct(ours_ms, 95),
                "hand_jit_p50": statistics.median(hand_jit_ms),
                "hand_nojit_p50": statistics.median(hand_nojit_ms),
                "hand_p50": statistics.median(hand_ms),
                "hand_p95": _pct(hand_ms, 95),
                "ratio_p50": statistics.median(ours_ms) / statistics.median(hand_ms),
                "ratio_p95": _pct(ours_ms, 95) / _pct(hand_ms, 95),
                "full_ms": full_ms,
            }
        )
    return {
        "exposures": exposures,
        "tag_rows": tag_rows,
        "flags": flags,
        "repeat": repeat,
        "built_seconds": info["built_seconds"],
        "scenarios": scenarios,
        "recipe": recipe(where_of(*SCENARIOS[0][1:])),
    }


def verdicts(result: dict[str, Any]) -> list[tuple[str, bool, str]]:
    out = []
    for s in result["scenarios"]:
        out.append(
            (
                f"Selection ({s['label']}) p95 under {GOAL_P95_MS:.0f} ms",
                s["ours_p95"] < GOAL_P95_MS,
                f"{s['ours_p95']:.1f} ms",
            )
        )
        out.append(
            (
                f"Selection ({s['label']}) at most {GOAL_RATIO}x hand-written SQL (p50)",
                s["ratio_p50"] <= GOAL_RATIO,
                f"{s['ratio_p50']:.2f}x",
            )
        )
    return out


def table(result: dict[str, Any]) -> str:
    lines = [
        "| Scenario | Selected | After `where` | Ours p50 | Ours p95 | Hand SQL p50 (JIT on / off) | Baseline p50 | Baseline p95 | Ratio p50 | Ratio p95 | Count + per-term + preview |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in result["scenarios"]:
        lines.append(
            f"| {s['label']} | {s['count']:,} | {s['after_where']:,} | {s['ours_p50']:.1f} ms | {s['ours_p95']:.1f} ms | "
            f"{s['hand_jit_p50']:.1f} / {s['hand_nojit_p50']:.1f} ms | "
            f"{s['hand_p50']:.1f} ms | {s['hand_p95']:.1f} ms | {s['ratio_p50']:.2f}x | {s['ratio_p95']:.2f}x | {s['full_ms']:.0f} ms |"
        )
    return "\n".join(lines)
