# ruff: noqa: S608 - SQL built here names only the fixed columns above, never user text
"""Store a set version's data IDs as chunks of typed arrays (DataIdChunk) instead of one indexed row each.

The rows of ``tagging_dataidrow`` are copied into chunks (in their stored order, grouped by instrument),
the table is dropped, and ``tagging_dataidrow`` comes back as a read-only view over the chunks (one row
per data ID), which the unmanaged ``DataIdRow`` model reads. Reversible: the reverse copies the chunks
back into a table of rows.
"""

import django.db.models.deletion
from django.db import migrations, models

import tagging.fields

CHUNK_ROWS = 16_384
SQLITE_CHUNK_ROWS = 1_000
COLUMNS = [
    "instrument",
    "exposure",
    "visit",
    "detector",
    "day_obs",
    "band",
    "physical_filter",
    "skymap",
    "tract",
    "patch",
]
ARRAYS = COLUMNS[1:]


def _compression(apps, schema_editor):
    """lz4 for the arrays where the server has it (PostgreSQL 14+ built with lz4): fast to write and read."""
    if schema_editor.connection.vendor != "postgresql":
        return
    columns = ", ".join(f"ALTER COLUMN {c} SET COMPRESSION lz4" for c in ARRAYS)
    schema_editor.execute(
        "DO $$ BEGIN EXECUTE 'ALTER TABLE tagging_dataidchunk " + columns + "'; "
        "EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'lz4 not available: default TOAST compression'; END $$"
    )


def _rows_to_chunks(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        arrays = ", ".join(
            f"CASE WHEN bool_or({c} IS NOT NULL) THEN array_agg({c} ORDER BY id) END AS {c}" for c in ARRAYS
        )
        schema_editor.execute(
            f"""
            INSERT INTO tagging_dataidchunk (version_id, seq, size, instrument, {", ".join(ARRAYS)},
                exposure_min, exposure_max, visit_min, visit_max)
            SELECT version_id, (row_number() OVER (PARTITION BY version_id ORDER BY instrument NULLS FIRST, grp)) - 1,
                size, instrument, {", ".join(ARRAYS)}, exposure_min, exposure_max, visit_min, visit_max
            FROM (
                SELECT version_id, instrument, grp, count(*) AS size, {arrays},
                    min(exposure) AS exposure_min, max(exposure) AS exposure_max,
                    min(visit) AS visit_min, max(visit) AS visit_max
                FROM (
                    SELECT r.*, (row_number() OVER (PARTITION BY version_id, instrument ORDER BY id) - 1) / {CHUNK_ROWS} AS grp
                    FROM tagging_dataidrow r
                ) AS numbered
                GROUP BY version_id, instrument, grp
            ) AS grouped
            ORDER BY version_id, instrument NULLS FIRST, grp
            """
        )
        return
    import json

    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT version_id FROM tagging_dataidrow")
        versions = [row[0] for row in cursor.fetchall()]
    for version_id in versions:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {', '.join(COLUMNS)} FROM tagging_dataidrow WHERE version_id = %s ORDER BY id", [version_id]
            )
            rows = cursor.fetchall()
        by_instrument: dict = {}
        for row in rows:
            by_instrument.setdefault(row[0], []).append(row)
        seq = 0
        for instrument, group in by_instrument.items():
            for start in range(0, len(group), SQLITE_CHUNK_ROWS):
                part = group[start : start + SQLITE_CHUNK_ROWS]
                values = {c: [r[i + 1] for r in part] for i, c in enumerate(ARRAYS)}
                arrays = [json.dumps(v) if any(x is not None for x in v) else None for v in values.values()]
                zones = []
                for c in ("exposure", "visit"):
                    present = [x for x in values[c] if x is not None]
                    zones += [min(present), max(present)] if present else [None, None]
                with connection.cursor() as cursor:
                    cursor.execute(
                        f"INSERT INTO tagging_dataidchunk (version_id, seq, size, instrument, {', '.join(ARRAYS)}, "
                        "exposure_min, exposure_max, visit_min, visit_max) VALUES "
                        f"({', '.join(['%s'] * (4 + len(ARRAYS) + 4))})",
                        [version_id, seq, len(part), instrument, *arrays, *zones],
                    )
                seq += 1


def _chunks_to_rows(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        schema_editor.execute(
            f"INSERT INTO tagging_dataidrow (version_id, {', '.join(COLUMNS)}) "
            f"SELECT c.version_id, c.instrument, {', '.join('u.' + c for c in ARRAYS)} "
            f"FROM tagging_dataidchunk c CROSS JOIN LATERAL unnest({', '.join('c.' + c for c in ARRAYS)}, "
            f"array_fill(NULL::boolean, ARRAY[c.size])) WITH ORDINALITY AS u({', '.join(ARRAYS)}, pad, ord) "
            "ORDER BY c.version_id, c.seq, u.ord"
        )
        return
    import json

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT version_id, size, instrument, {', '.join(ARRAYS)} FROM tagging_dataidchunk ORDER BY version_id, seq"
        )
        chunks = cursor.fetchall()
    for version_id, size, instrument, *arrays in chunks:
        values = [json.loads(a) if a is not None else [None] * size for a in arrays]
        rows = [(version_id, instrument, *row) for row in zip(*values, strict=True)]
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO tagging_dataidrow (version_id, {', '.join(COLUMNS)}) VALUES "
                f"({', '.join(['%s'] * (1 + len(COLUMNS)))})",
                rows,
            )


def _view_sql(vendor: str) -> str:
    if vendor == "postgresql":
        # One row per data ID. unnest() of several arrays pads the missing (NULL) ones with NULLs; the
        # array_fill makes every chunk yield exactly ``size`` rows, even an instrument-only one.
        return (
            "CREATE VIEW tagging_dataidrow AS "
            f"SELECT (c.id << 20) + u.ord - 1 AS id, c.version_id, c.instrument, {', '.join('u.' + c for c in ARRAYS)} "
            f"FROM tagging_dataidchunk c CROSS JOIN LATERAL unnest({', '.join('c.' + c for c in ARRAYS)}, "
            f"array_fill(NULL::boolean, ARRAY[c.size])) WITH ORDINALITY AS u({', '.join(ARRAYS)}, pad, ord)"
        )
    # SQLite: the arrays are JSON lists; json_each over a list of ``size`` positions drives the rows.
    values = ", ".join(f"json_extract(c.{c}, '$[' || j.key || ']') AS {c}" for c in ARRAYS)
    return (
        "CREATE VIEW tagging_dataidrow AS "
        f"SELECT (c.id << 20) + j.key AS id, c.version_id, c.instrument, {values} "
        "FROM tagging_dataidchunk c, json_each(COALESCE(c.exposure, c.visit, c.detector, c.day_obs, c.band, "
        "c.physical_filter, c.skymap, c.tract, c.patch, json_array(c.instrument))) j"
    )


def _create_view(apps, schema_editor):
    schema_editor.execute(_view_sql(schema_editor.connection.vendor))


def _drop_view(apps, schema_editor):
    schema_editor.execute("DROP VIEW IF EXISTS tagging_dataidrow")


class Migration(migrations.Migration):
    dependencies = [
        ("tagging", "0006_bad_data_register"),
    ]

    operations = [
        migrations.CreateModel(
            name="DataIdChunk",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("seq", models.PositiveIntegerField()),
                ("size", models.PositiveIntegerField()),
                ("instrument", models.CharField(blank=True, max_length=64, null=True)),
                ("exposure", tagging.fields.ArrayColumn(base="bigint", blank=True, null=True)),
                ("visit", tagging.fields.ArrayColumn(base="bigint", blank=True, null=True)),
                ("detector", tagging.fields.ArrayColumn(base="integer", blank=True, null=True)),
                ("day_obs", tagging.fields.ArrayColumn(base="integer", blank=True, null=True)),
                ("band", tagging.fields.ArrayColumn(base="text", blank=True, null=True)),
                ("physical_filter", tagging.fields.ArrayColumn(base="text", blank=True, null=True)),
                ("skymap", tagging.fields.ArrayColumn(base="text", blank=True, null=True)),
                ("tract", tagging.fields.ArrayColumn(base="integer", blank=True, null=True)),
                ("patch", tagging.fields.ArrayColumn(base="integer", blank=True, null=True)),
                ("exposure_min", models.BigIntegerField(blank=True, null=True)),
                ("exposure_max", models.BigIntegerField(blank=True, null=True)),
                ("visit_min", models.BigIntegerField(blank=True, null=True)),
                ("visit_max", models.BigIntegerField(blank=True, null=True)),
                (
                    "version",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="chunks",
                        to="tagging.dataidsetversion",
                    ),
                ),
            ],
            options={
                "ordering": ["version", "seq"],
                "indexes": [
                    models.Index(
                        fields=["instrument", "exposure_min", "exposure_max"], name="dataidchunk_exposure_zone"
                    ),
                    models.Index(fields=["instrument", "visit_min", "visit_max"], name="dataidchunk_visit_zone"),
                ],
                "constraints": [models.UniqueConstraint(fields=("version", "seq"), name="dataidchunk_unique_seq")],
            },
        ),
        migrations.RunPython(_compression, migrations.RunPython.noop),
        migrations.RunPython(_rows_to_chunks, _chunks_to_rows),
        migrations.DeleteModel(name="DataIdRow"),
        migrations.CreateModel(
            name="DataIdRow",
            fields=[
                ("id", models.BigIntegerField(primary_key=True, serialize=False)),
                ("instrument", models.CharField(blank=True, max_length=64, null=True)),
                ("exposure", models.BigIntegerField(blank=True, null=True)),
                ("visit", models.BigIntegerField(blank=True, null=True)),
                ("detector", models.IntegerField(blank=True, null=True)),
                ("day_obs", models.IntegerField(blank=True, null=True)),
                ("band", models.CharField(blank=True, max_length=16, null=True)),
                ("physical_filter", models.CharField(blank=True, max_length=64, null=True)),
                ("skymap", models.CharField(blank=True, max_length=64, null=True)),
                ("tract", models.IntegerField(blank=True, null=True)),
                ("patch", models.IntegerField(blank=True, null=True)),
                (
                    "version",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="rows",
                        to="tagging.dataidsetversion",
                    ),
                ),
            ],
            options={
                "db_table": "tagging_dataidrow",
                "ordering": ["version", "pk"],
                "managed": False,
            },
        ),
        migrations.RunPython(_create_view, _drop_view),
    ]
