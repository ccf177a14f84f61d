"""Benchmarks of the DataID-set paths, against baselines measured in the same run.

    make benchmarks            # or: .venv/bin/python benchmarks/run.py [--repeat N]

1. Upload of 1,000,000 (instrument, exposure, detector) data IDs from a CSV file into a set
   (``dataidset_create``: read, alias/existence checks, dedupe, store) against PostgreSQL ``COPY``
   of the same file into a plain table. Goal: at most 1.5x the COPY, peak memory under 500 MB.
   Also measured, to show where the time goes: ``COPY`` of the same file into the set table itself.
2. Resolving a 100,000-data-ID set into a TAGGED collection (``dataidset_tag_run``) against the bare
   daf_butler calls (``join_data_coordinate_table`` + ``associate``) on the same data IDs. Goal: 1.2x.

Every measured operation runs in a fresh process (``--worker``), which reports its wall time and its
peak RSS (``getrusage``). Each is repeated (3 times by default, interleaved with its baseline) and the
median is reported. Results are printed and written to ``benchmarks/RESULTS.md``.

PostgreSQL comes from ``DATABASE_URL`` (default ``postgresql://postgres@localhost:5432/cm_bench``; the
database is created if missing and migrated). The Butler repo (DemoCam, 9 detectors, 111,112
exposures, 150,000 raws registered as rows) and the CSV files are built once under ``var/bench/``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "var" / "bench"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
BEFORE = Path(__file__).resolve().parent / "before.json"

# The data. Changing any of these rebuilds the cached repo / files (their names carry a version).
EXPOSURES = 111_112  # x 9 detectors = 1,000,008 data IDs
DETECTORS = 9
RAWS = 150_000  # raw datasets registered (rows only) for the first 150,000 data IDs, exposure-major
UPLOAD_ROWS = 1_000_000
UPLOAD_DUPLICATES = 5_000  # rows of the upload that repeat an earlier row (removed and counted)
TAG_ROWS = 100_000
TAG_WITHOUT_RAW = 1_000  # data IDs of the TAGGED set that exist but have no raw (reported as missing)
REPO_DIR = BENCH_DIR / f"repo-e{EXPOSURES}-d{DETECTORS}-r{RAWS}"
UPLOAD_CSV = BENCH_DIR / f"upload-{UPLOAD_ROWS}-dup{UPLOAD_DUPLICATES}.csv"
TAG_CSV = BENCH_DIR / f"tag-{TAG_ROWS}-missing{TAG_WITHOUT_RAW}.csv"
REPO_LABEL = "bench"
USER = "bench"
SET_PREFIX = "bench-"
PLAIN_TABLE = "bench_plain_copy"
DEFAULT_DATABASE_URL = "postgresql://postgres@localhost:5432/cm_bench"
GOALS = {"upload_ratio": 1.5, "upload_mb": 500, "tag_ratio": 1.2}


# --- environment ---------------------------------------------------------------------------------


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    env.setdefault("SECRET_KEY", "benchmarks-only-not-a-secret")
    env.setdefault("DEBUG", "0")  # DEBUG=1 would record every SQL query in memory
    env.setdefault("CM_VAR_DIR", str(BENCH_DIR / "django"))
    env.setdefault("CELERY_BROKER_URL", "memory://")
    env.setdefault("CM_LOG_LEVEL", "WARNING")
    # The benchmark repo, and /nonexistent for the rows-only repos of the selection and dashboard data (never read).
    env.setdefault("CM_BUTLER_REPO_ROOTS", f"{BENCH_DIR},/nonexistent")
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _django() -> None:
    os.environ.update(_environment())
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _ensure_database(url: str) -> None:
    """Create the database named in ``url`` if it does not exist (connecting to ``postgres`` to do it)."""
    from urllib.parse import urlparse, urlunparse

    import psycopg
    from psycopg import sql

    parsed = urlparse(url)
    if parsed.scheme.split("+")[0] not in ("postgres", "postgresql"):
        raise SystemExit(f"The benchmarks need PostgreSQL; DATABASE_URL is {url!r}.")
    name = parsed.path.lstrip("/")
    admin = urlunparse(parsed._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            print(f"  creating database {name}")
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


# --- measuring in a fresh process ----------------------------------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _spawn(worker: str, **args: Any) -> dict[str, Any]:
    """Run ``worker`` in a fresh Python process; returns what it reports (JSON on its last line)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", worker, "--args", json.dumps(args)]
    proc = subprocess.run(cmd, env=_environment(), cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"benchmark worker {worker!r} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _measure(fn, *, warm=None, after=None) -> dict[str, Any]:
    """Time ``fn()`` once in this (fresh) process; memory is the peak RSS of the process."""
    if warm is not None:
        warm()
    baseline = _rss_mb()
    start = time.perf_counter()
    info = fn() or {}
    seconds = time.perf_counter() - start
    peak = _peak_mb()
    if after is not None:
        after(info)
    return {"seconds": seconds, "peak_mb": peak, "baseline_mb": baseline, "increase_mb": peak - baseline, **info}


# --- setup (once per run, in its own process) -----------------------------------------------------


def _write_csvs() -> None:
    import numpy as np

    from lsst_adapter.bulk import bulk_exposure_ids

    exposure_ids = np.array(bulk_exposure_ids(EXPOSURES), dtype=np.int64)
    rng = np.random.default_rng(20261124)
    if not UPLOAD_CSV.exists():
        print(f"  writing {UPLOAD_CSV.name}")
        distinct = UPLOAD_ROWS - UPLOAD_DUPLICATES
        keys = rng.choice(EXPOSURES * DETECTORS, size=distinct, replace=False)
        keys = np.concatenate([keys, rng.choice(keys, size=UPLOAD_DUPLICATES, replace=False)])
        rng.shuffle(keys)
        _write_csv(UPLOAD_CSV, exposure_ids[keys // DETECTORS], keys % DETECTORS)
    if not TAG_CSV.exists():
        print(f"  writing {TAG_CSV.name}")
        with_raw = rng.choice(RAWS, size=TAG_ROWS - TAG_WITHOUT_RAW, replace=False)
        without = RAWS + rng.choice(EXPOSURES * DETECTORS - RAWS, size=TAG_WITHOUT_RAW, replace=False)
        keys = np.concatenate([with_raw, without])
        rng.shuffle(keys)
        _write_csv(TAG_CSV, exposure_ids[keys // DETECTORS], keys % DETECTORS)


def _write_csv(path: Path, exposures, detectors) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as out:
        out.write("instrument,exposure,detector\n")
        step = 100_000
        for start in range(0, len(exposures), step):
            ex = exposures[start : start + step].tolist()
            de = detectors[start : start + step].tolist()
            out.write("".join(f"DemoCam,{e},{d}\n" for e, d in zip(ex, de, strict=True)))
    tmp.rename(path)


def setup() -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from core.roles import set_role
    from lsst_adapter.bulk import build_bulk_repo
    from tagging.models import ButlerRepo, DataIdSet, Exposure
    from tagging.services import UploadSource, butler_repo_upsert, dataidset_create, repo_mirror_sync

    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    call_command("migrate", interactive=False, verbosity=0)
    if not (REPO_DIR / "butler.yaml").exists():
        print(f"  building the Butler repo {REPO_DIR.relative_to(ROOT)} (about a minute)")
        partial = REPO_DIR.with_name(REPO_DIR.name + "-building")  # no dot: makeRepo reads a suffix as a format
        if partial.exists():
            import shutil

            shutil.rmtree(partial)
        build_bulk_repo(partial, exposures=EXPOSURES, detectors=DETECTORS, raws=RAWS)
        partial.rename(REPO_DIR)
        # The repo's butler.yaml names no absolute path, so the rename is safe.
    repo = butler_repo_upsert(label=REPO_LABEL, config_uri=str(REPO_DIR), default_instrument="DemoCam")
    if repo.mirror_synced is None or Exposure.objects.filter(repo=repo).count() != EXPOSURES:
        print("  syncing the exposure mirror")
        t0 = time.perf_counter()
        repo_mirror_sync(repo=repo)
        print(f"    {time.perf_counter() - t0:.1f} s")
    _write_csvs()
    user = get_user_model().objects.filter(username=USER).first()
    if user is None:
        user = get_user_model().objects.create_user(USER, f"{USER}@example.org", None)
    set_role(user, "staff")
    # Leftovers of an interrupted run.
    DataIdSet.objects.filter(repo=repo, name__startswith=SET_PREFIX).delete()
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {PLAIN_TABLE}")
        cursor.execute("VACUUM ANALYZE tagging_dataidchunk")
    # The set the TAGGED benchmarks resolve, made once per run.
    with open(TAG_CSV, "rb") as stream:
        version = dataidset_create(
            user=user,
            repo_label=REPO_LABEL,
            name=f"{SET_PREFIX}tag",
            reason="benchmark: resolution into a TAGGED collection",
            source=UploadSource(kind="file", filename=TAG_CSV.name, stream=stream, size=TAG_CSV.stat().st_size),
        )
    assert version.count == TAG_ROWS, version.count
    with connection.cursor() as cursor:
        cursor.execute("SELECT version(), current_setting('shared_buffers'), current_setting('synchronous_commit')")
        server, shared_buffers, sync = cursor.fetchone()
    return {
        "tag_version_id": version.pk,
        "repo_id": ButlerRepo.objects.get(label=REPO_LABEL).pk,
        "postgres": server.split(" on ")[0],
        "postgres_settings": f"shared_buffers={shared_buffers}, synchronous_commit={sync}",
    }


def cleanup(tag_version_id: int) -> dict[str, Any]:
    from tagging.models import DataIdSet

    DataIdSet.objects.filter(versions__pk=tag_version_id).delete()
    return {}


# --- workers: one measured operation each ---------------------------------------------------------


def _vacuum_rows() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM tagging_dataidchunk")


def copy_plain() -> dict[str, Any]:
    """Baseline: COPY of the CSV file into a plain table (no key, no index, no constraint)."""
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {PLAIN_TABLE}")
        cursor.execute(f"CREATE TABLE {PLAIN_TABLE} (instrument varchar(64), exposure bigint, detector integer)")

    def run() -> dict[str, Any]:
        sql = f"COPY {PLAIN_TABLE} FROM STDIN WITH (FORMAT csv, HEADER true)"
        with (
            transaction.atomic(),
            connection.cursor() as cursor,
            open(UPLOAD_CSV, "rb") as handle,
            cursor.cursor.copy(sql) as copy,
        ):
            for block in iter(lambda: handle.read(1 << 20), b""):
                copy.write(block)
        return {}

    def after(info: dict[str, Any]) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {PLAIN_TABLE}")
            info["rows"] = cursor.fetchone()[0]
            cursor.execute(f"DROP TABLE {PLAIN_TABLE}")

    return _measure(run, after=after)


def copy_settable() -> dict[str, Any]:
    """Reference: the storing step alone. The same CSV file read by pyarrow into columns and written into
    the set table as chunks of arrays (``storage.store``), with no check and no dedupe."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from tagging.dataids import storage
    from tagging.dataids.normalize import ColumnRows
    from tagging.models import ButlerRepo, DataIdRow, DataIdSet, DataIdSetVersion

    user = get_user_model().objects.get(username=USER)
    repo = ButlerRepo.objects.get(label=REPO_LABEL)
    dataid_set = DataIdSet.objects.create(name=f"{SET_PREFIX}copy", repo=repo, owner=user, reason="benchmark")
    dims = ["instrument", "detector", "exposure"]

    def run() -> dict[str, Any]:
        with transaction.atomic():
            version = DataIdSetVersion.objects.create(
                dataid_set=dataid_set, number=1, dimensions=dims, source_kind="file", created_by=user
            )
            table = pacsv.read_csv(
                UPLOAD_CSV,
                convert_options=pacsv.ConvertOptions(
                    column_types={"instrument": pa.string(), "exposure": pa.int64(), "detector": pa.int64()}
                ),
            )
            encoded = table.column("instrument").combine_chunks().dictionary_encode()
            rows = ColumnRows(
                count=table.num_rows,
                arrays={name: table.column(name).to_numpy() for name in ("exposure", "detector")},
                instrument_codes=encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64),
                instruments=[str(v) for v in encoded.dictionary.to_pylist()],
            )
            storage.store(version.pk, dims, rows)
        return {"version_id": version.pk}

    def after(info: dict[str, Any]) -> None:
        info["rows"] = DataIdRow.objects.filter(version_id=info["version_id"]).count()
        dataid_set.delete()
        _vacuum_rows()

    return _measure(run, after=after)


def upload_ours() -> dict[str, Any]:
    """Ours: dataidset_create on the CSV file (read, alias and existence checks, dedupe, store)."""
    from django.contrib.auth import get_user_model

    from lsst_adapter.registry import open_butler
    from tagging.models import ButlerRepo, DataIdSet
    from tagging.services import UploadSource, dataidset_create

    user = get_user_model().objects.get(username=USER)
    repo = ButlerRepo.objects.get(label=REPO_LABEL)

    def warm() -> None:
        open_butler(repo.config_uri)  # a running server has its Butler open already

    def run() -> dict[str, Any]:
        with open(UPLOAD_CSV, "rb") as stream:
            version = dataidset_create(
                user=user,
                repo_label=REPO_LABEL,
                name=f"{SET_PREFIX}upload",
                reason="benchmark upload",
                source=UploadSource(
                    kind="file", filename=UPLOAD_CSV.name, stream=stream, size=UPLOAD_CSV.stat().st_size
                ),
            )
        return {"version_id": version.pk, "count": version.count, "duplicates": version.duplicates_removed}

    def after(info: dict[str, Any]) -> None:
        assert info["count"] == UPLOAD_ROWS - UPLOAD_DUPLICATES, info
        assert info["duplicates"] == UPLOAD_DUPLICATES, info
        DataIdSet.objects.filter(versions__pk=info["version_id"]).delete()
        _vacuum_rows()

    return _measure(run, warm=warm, after=after)


def _tag_table(version_id: int):
    """The TAGGED set's data IDs, in stored order, as the astropy table ``dataidset_tag_run`` hands to the
    Butler (same columns, dtypes and row order), read with plain SQL before the clock starts."""
    import numpy as np
    from astropy.table import Table
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT instrument, detector, exposure FROM tagging_dataidrow WHERE version_id = %s ORDER BY id",
            [version_id],
        )
        instrument, detector, exposure = zip(*cursor.fetchall(), strict=True)
    table = Table()
    table["instrument"] = np.array(instrument, dtype=str)
    table["detector"] = np.array(detector, dtype=np.int64)
    table["exposure"] = np.array(exposure, dtype=np.int64)
    return table


def _drop_collection(name: str) -> None:
    from lsst_adapter.registry import open_butler

    butler = open_butler(str(REPO_DIR), writeable=True)
    butler.collections.x_remove(name)


def tag_bare(collection: str, version_id: int) -> dict[str, Any]:
    """Baseline: the bare daf_butler calls on the same data IDs (table built before the clock starts)."""
    from lsst.daf.butler import CollectionType

    from lsst_adapter.demo import RAW_COLLECTION, RAW_DATASET_TYPE
    from lsst_adapter.registry import open_butler

    state: dict[str, Any] = {}

    def warm() -> None:
        state["butler"] = open_butler(str(REPO_DIR), writeable=True)
        state["table"] = _tag_table(version_id)

    def run() -> dict[str, Any]:
        butler, table = state["butler"], state["table"]
        with butler.query() as query:
            refs = list(
                query.join_data_coordinate_table(table).datasets(
                    RAW_DATASET_TYPE, collections=[RAW_COLLECTION], find_first=True
                )
            )
        butler.collections.register(collection, CollectionType.TAGGED)
        with butler.transaction():
            butler.registry.associate(collection, refs)
        return {"found": len(refs)}

    def after(info: dict[str, Any]) -> None:
        assert info["found"] == TAG_ROWS - TAG_WITHOUT_RAW, info
        _drop_collection(collection)

    return _measure(run, warm=warm, after=after)


def tag_ours(collection: str, version_id: int) -> dict[str, Any]:
    """Ours: dataidset_tag_run on the set (read its rows, one Butler query, associate, count missing)."""
    from django.utils import timezone

    from lsst_adapter.demo import RAW_COLLECTION, RAW_DATASET_TYPE
    from lsst_adapter.registry import open_butler
    from tagging.models import DataIdSetVersion, TagStatus
    from tagging.services import dataidset_tag_run

    def warm() -> None:
        open_butler(str(REPO_DIR), writeable=True)
        # What dataidset_tag_start leaves for the Celery task.
        DataIdSetVersion.objects.filter(pk=version_id).update(
            tag_status=TagStatus.PENDING,
            tag_collection=collection,
            tag_dataset_type=RAW_DATASET_TYPE,
            tag_input_collections=[RAW_COLLECTION],
            tag_error="",
            tag_updated=timezone.now(),
        )

    def run() -> dict[str, Any]:
        version = dataidset_tag_run(version_id=version_id)
        assert version is not None
        return {
            "status": version.tag_status,
            "found": version.tag_found,
            "missing": version.tag_missing_count,
            "error": version.tag_error,
        }

    def after(info: dict[str, Any]) -> None:
        assert info["status"] == "done", info
        assert (info["found"], info["missing"]) == (TAG_ROWS - TAG_WITHOUT_RAW, TAG_WITHOUT_RAW), info
        _drop_collection(collection)

    return _measure(run, warm=warm, after=after)


def orchestration(profile: str | None = None) -> dict[str, Any]:
    """The executor's overhead on a 1,000-group campaign with the no-op WMS (``benchmarks/orchestration.py``)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import orchestration as bench

    start = time.perf_counter()
    out = bench.run(str(REPO_DIR), USER, profile=profile)
    return {"seconds": time.perf_counter() - start, "peak_mb": _peak_mb(), **out}


def selection(repeat: int = 30) -> dict[str, Any]:
    """The selection builder's count against hand-written SQL (``benchmarks/selection.py``)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import selection as bench

    return {**bench.run(repeat), "peak_mb": _peak_mb()}


def _dashboards_module():
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import dashboards as bench

    return bench


def dashboards_setup() -> dict[str, Any]:
    return _dashboards_module().setup()


def dashboards_server(campaign_ids: list[int], repeat: int) -> dict[str, Any]:
    return _dashboards_module().measure_server(campaign_ids, repeat)


def dashboards_browser(campaign_ids: list[int], repeat: int) -> dict[str, Any]:
    return _dashboards_module().measure_browser(campaign_ids, repeat)


WORKERS = {
    "dashboards_setup": dashboards_setup,
    "dashboards_server": dashboards_server,
    "dashboards_browser": dashboards_browser,
    "setup": setup,
    "selection": selection,
    "orchestration": orchestration,
    "cleanup": cleanup,
    "copy_plain": copy_plain,
    "copy_settable": copy_settable,
    "upload_ours": upload_ours,
    "tag_bare": tag_bare,
    "tag_ours": tag_ours,
}


# --- report ---------------------------------------------------------------------------------------


def _machine() -> dict[str, str]:
    import importlib.metadata as md

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as handle:
            mem_kb = int(next(line for line in handle if line.startswith("MemTotal")).split()[1])
        memory = f"{mem_kb / 2**20:.1f} GiB"
    except OSError:
        memory = "?"
    versions = []
    for package in ("Django", "lsst-daf-butler", "numpy", "pyarrow", "psycopg", "astropy", "SQLAlchemy"):
        with contextlib.suppress(md.PackageNotFoundError):
            versions.append(f"{package} {md.version(package)}")
    return {
        "cpu": f"{os.cpu_count()} cores ({cpu})",
        "memory": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": ", ".join(versions),
    }


def _git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()
        return rev + (" + uncommitted changes" if dirty else "") if rev else "?"
    except OSError:
        return "?"


def _median(runs: list[dict[str, Any]], key: str = "seconds") -> float:
    return statistics.median(r[key] for r in runs)


def _summary(results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    med = {name: _median(runs) for name, runs in results.items()}
    peak = {name: max(r["peak_mb"] for r in runs) for name, runs in results.items()}
    increase = {name: max(r["increase_mb"] for r in runs) for name, runs in results.items()}
    return {
        "median": med,
        "peak_mb": peak,
        "increase_mb": increase,
        "upload_ratio": med["upload_ours"] / med["copy_plain"],
        "settable_ratio": med["copy_settable"] / med["copy_plain"],
        "upload_vs_settable": med["upload_ours"] / med["copy_settable"],
        "tag_ratio": med["tag_ours"] / med["tag_bare"],
    }


LABELS = {
    "copy_plain": "(a) COPY of the CSV into a plain table",
    "copy_settable": "(a') storing alone: the file read by pyarrow, written as chunks",
    "upload_ours": "(b) dataidset_create on the CSV",
    "tag_bare": "(c) bare join_data_coordinate_table + associate",
    "tag_ours": "(d) dataidset_tag_run",
}


def _table(results: dict[str, list[dict[str, Any]]], summary: dict[str, Any], before: dict[str, Any] | None) -> str:
    ratio_of = {
        "copy_plain": None,
        "copy_settable": summary["settable_ratio"],
        "upload_ours": summary["upload_ratio"],
        "tag_bare": None,
        "tag_ours": summary["tag_ratio"],
    }
    before_ratio = {}
    if before:
        b = before["median"]
        before_ratio = {
            "upload_ours": b["upload_ours"] / b["copy_plain"],
            "tag_ours": b["tag_ours"] / b["tag_bare"],
        }
    head = "| operation | runs (s) | median (s) | ratio | peak RSS (MB) | increase (MB) |"
    rule = "|---|---|---|---|---|---|"
    if before:
        head += " before: median (s) | before: ratio | before: peak RSS (MB) |"
        rule += "---|---|---|"
    lines = [head, rule]
    for name, label in LABELS.items():
        runs = results[name]
        ratio = ratio_of[name]
        times = ", ".join(f"{r['seconds']:.2f}" for r in runs)
        row = (
            f"| {label} | {times} | {summary['median'][name]:.2f} "
            f"| {'baseline' if ratio is None else f'{ratio:.2f}x'} | {summary['peak_mb'][name]:.0f} "
            f"| {summary['increase_mb'][name]:.0f} |"
        )
        if before:
            # (a') measured something else before (a COPY into the old one-row-per-data-ID table).
            b_med = None if name == "copy_settable" else before["median"].get(name)
            b_ratio = before_ratio.get(name)
            b_peak = None if name == "copy_settable" else before.get("peak_mb", {}).get(name)
            row += (
                f" {'' if b_med is None else f'{b_med:.2f}'} "
                f"| {'baseline' if name in ('copy_plain', 'tag_bare') else ('' if b_ratio is None else f'{b_ratio:.2f}x')} "
                f"| {'' if b_peak is None else f'{b_peak:.0f}'} |"
            )
        lines.append(row)
    return "\n".join(lines)


def _verdicts(summary: dict[str, Any]) -> list[tuple[str, bool, str]]:
    upload_mb = summary["peak_mb"]["upload_ours"]
    return [
        (
            f"Upload of 1M data IDs at most {GOALS['upload_ratio']}x COPY into a plain table",
            summary["upload_ratio"] <= GOALS["upload_ratio"],
            f"{summary['upload_ratio']:.2f}x (storing alone, no checks: {summary['settable_ratio']:.2f}x)",
        ),
        (
            f"Upload peak memory under {GOALS['upload_mb']} MB",
            upload_mb < GOALS["upload_mb"],
            f"{upload_mb:.0f} MB peak RSS ({summary['increase_mb']['upload_ours']:.0f} MB over the process before the upload)",
        ),
        (
            f"TAGGED resolution of 100k data IDs at most {GOALS['tag_ratio']}x the bare Butler calls",
            summary["tag_ratio"] <= GOALS["tag_ratio"],
            f"{summary['tag_ratio']:.2f}x",
        ),
    ]


def _write_results(
    results: dict[str, list[dict[str, Any]]],
    summary: dict[str, Any],
    machine: dict[str, str],
    info: dict[str, Any],
    before: dict[str, Any] | None,
    elapsed: float,
    repeat: int,
    orchestration_runs: list[dict[str, Any]] | None = None,
) -> None:
    verdicts = _verdicts(summary)
    if orchestration_runs:
        verdicts.append(_orchestration_module().verdict(orchestration_runs))
    notes = _notes()
    text = [
        "# Benchmark results",
        "",
        "Written by `make benchmarks` (`.venv/bin/python benchmarks/run.py`); do not edit by hand "
        "(the analysis below the numbers comes from `benchmarks/NOTES.md`).",
        "",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Code: {_git_revision()}",
        f"- Machine: {machine['cpu']}, {machine['memory']} RAM, {machine['os']}",
        f"- Python {machine['python']}; {machine['versions']}",
        f"- {info['postgres']} ({info['postgres_settings']}), on the same machine",
        f"- Each operation in a fresh process, {repeat} runs, interleaved with its baseline; median reported. "
        f"Whole run: {elapsed / 60:.1f} min.",
        "",
        "## Goals",
        "",
        "| goal | result | met |",
        "|---|---|---|",
        *(f"| {goal} | {result} | {'yes' if ok else '**no**'} |" for goal, ok, result in verdicts),
        "",
        "## Numbers",
        "",
        f"Upload: {UPLOAD_ROWS:,} rows `instrument,exposure,detector` ({UPLOAD_CSV.stat().st_size / 2**20:.1f} MiB, "
        f"random order, {UPLOAD_DUPLICATES:,} duplicates) checked against {EXPOSURES:,} exposures x {DETECTORS} "
        f"detectors. TAGGED: {TAG_ROWS:,} data IDs, {TAG_WITHOUT_RAW:,} of them without a raw, "
        f"among {RAWS:,} raws (SQLite registry).",
        "",
        _table(results, summary, before),
        "",
        "Peak RSS is the process's `ru_maxrss` (absolute); increase is over its RSS just before the measured "
        "operation (after Django start-up and, for our paths, opening the Butler, as a running server has).",
    ]
    if before:
        text += [
            "",
            f'"Before" columns: the same benchmark on the code before the optimisation ({before.get("note", "")}).',
        ]
    if orchestration_runs:
        text += ["", _orchestration_section(orchestration_runs)]
    if notes:
        text += ["", NOTES_START, notes, NOTES_END]
    text += [
        "",
        "## Re-running",
        "",
        "```",
        "make benchmarks                      # or: .venv/bin/python benchmarks/run.py",
        "DATABASE_URL=postgresql://user@host:5432/dbname make benchmarks",
        ".venv/bin/python benchmarks/run.py --repeat 5",
        ".venv/bin/python benchmarks/run.py --only orchestration   # rewrites only its section (and the notes)",
        "```",
        "",
        "The first run also builds the Butler repo and the CSV files under `var/bench/` (about a minute); later "
        f"runs reuse them. Set `DATABASE_URL` to another PostgreSQL database to use it (default `{DEFAULT_DATABASE_URL}`, "
        "created and migrated if missing).",
        "",
    ]
    RESULTS.write_text("\n".join(text))


ORCH_START, ORCH_END = "<!-- orchestration:start -->", "<!-- orchestration:end -->"
DASH_START, DASH_END = "<!-- dashboards:start -->", "<!-- dashboards:end -->"
NOTES_START, NOTES_END = "<!-- notes:start -->", "<!-- notes:end -->"


def _notes() -> str:
    notes_path = Path(__file__).resolve().parent / "NOTES.md"
    return notes_path.read_text().strip() if notes_path.exists() else ""


def _orchestration_module():
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import orchestration as bench

    return bench


def _orchestration_section(runs: list[dict[str, Any]]) -> str:
    bench = _orchestration_module()
    goal, ok, result = bench.verdict(runs)
    return "\n".join(
        [
            ORCH_START,
            "## Orchestration overhead (executor, no-op WMS)",
            "",
            f"Measured {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, {len(runs)} run(s), each in a fresh process "
            f"(peak RSS {max(r['peak_mb'] for r in runs):.0f} MB). A campaign of {bench.GROUPS:,} groups of "
            f'{bench.GROUP_SIZE} exposures ({bench.GROUP_SIZE * 9} quanta each) with `bps.wms = "noop"`; '
            "method in the notes below.",
            "",
            f"{goal}: {result}. Goal {'met' if ok else '**not met**'}.",
            "",
            bench.table(runs),
            ORCH_END,
        ]
    )


def _replace_block(text: str, start: str, end: str, block: str, *, before: str) -> str:
    """``block`` (which carries its markers) in place of the marked one, else inserted before ``before``."""
    if start in text and end in text:
        head, rest = text.split(start, 1)
        return head + block + rest.split(end, 1)[1]
    if before in text:
        head, tail = text.split(before, 1)
        return head + block + "\n\n" + before + tail
    return text.rstrip() + "\n\n" + block + "\n"


def _update_orchestration_results(runs: list[dict[str, Any]]) -> None:
    """``--only orchestration``: rewrite its section (and the notes) of RESULTS.md, leaving the rest as it is."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    notes = _notes()
    if notes:
        if NOTES_START not in text and notes.splitlines()[0] in text and "\n## Re-running" in text:
            head, rest = text.split(notes.splitlines()[0], 1)  # notes written before they had markers
            text = head + NOTES_START + "\n" + NOTES_END + "\n\n## Re-running" + rest.split("\n## Re-running", 1)[1]
        text = _replace_block(
            text, NOTES_START, NOTES_END, f"{NOTES_START}\n{notes}\n{NOTES_END}", before="## Re-running"
        )
    text = _replace_block(text, ORCH_START, ORCH_END, _orchestration_section(runs), before=NOTES_START)
    RESULTS.write_text(text)


SEL_START, SEL_END = "<!-- selection:start -->", "<!-- selection:end -->"


def _selection_results(result: dict[str, Any]) -> None:
    """``--only selection``: write its section of RESULTS.md, leaving the rest as it is."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import selection as bench

    verdicts = "\n".join(
        f"- {goal}: {value}. Goal {'met' if ok else '**not met**'}." for goal, ok, value in bench.verdicts(result)
    )
    block = "\n".join(
        [
            SEL_START,
            "## Selection builder (three tag tables, a flag filter and a where expression)",
            "",
            f"Measured {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, code {_git_revision()} "
            f"({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} when the run ended). Data: {result['exposures']:,} mirrored exposures, {result['tag_rows']:,} tag rows "
            f"in three tables, {result['flags']:,} flags. Each count repeated {result['repeat']} times, interleaved "
            "with the hand-written query; method in `benchmarks/NOTES.md` (Selection).",
            "",
            verdicts,
            "",
            bench.table(result),
            "",
            "Recipe of the first scenario:",
            "",
            "```json",
            json.dumps(result["recipe"], indent=1),
            "```",
            SEL_END,
        ]
    )
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    RESULTS.write_text(_replace_block(text, SEL_START, SEL_END, block, before=NOTES_START))


def _run_dashboards(options) -> None:
    """``--only dashboards``: its own data (no Butler repo needed), its own section of RESULTS.md."""
    started = time.perf_counter()
    env = _environment()
    print(f"Dashboard benchmark on {env['DATABASE_URL']}")
    _ensure_database(env["DATABASE_URL"])
    info = _spawn("dashboards_setup")
    bench = _dashboards_module()
    print("Server: each page through Django's test client")
    server = _spawn("dashboards_server", campaign_ids=info["campaign_ids"], repeat=max(options.repeat, 5))
    print("Browser: headless Chromium until every figure is drawn")
    browser = _spawn("dashboards_browser", campaign_ids=info["campaign_ids"], repeat=options.repeat)
    print()
    print(bench.table(server, browser))
    print()
    verdicts = bench.verdicts(server, browser)
    for goal, ok, result in verdicts:
        print(f"{'MET    ' if ok else 'NOT MET'}  {goal}: {result}")
    if options.no_results:
        return
    machine = _machine()
    block = "\n".join(
        [
            DASH_START,
            "## Metric dashboards (1,000,000 metric values per campaign)",
            "",
            f"Measured {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, code {_git_revision()}, on "
            f"{machine['cpu']}, {machine['memory']} RAM, PostgreSQL on the same machine, load average "
            f"{os.getloadavg()[0]:.1f} when the run ended (medians of "
            f"{max(options.repeat, 5)} server runs, {options.repeat} first browser loads, each in a new browser context, "
            f"and {options.repeat} later loads). Method in the notes below.",
            "",
            "| goal | result | met |",
            "|---|---|---|",
            *[f"| {goal} | {result} | {'yes' if ok else '**no**'} |" for goal, ok, result in verdicts],
            "",
            bench.table(server, browser),
            "",
            "Response size is the whole HTML page with its figures' JSON; plotly.js (1.6 MB: the project's bundle "
            "of the trace types it draws, cached by the browser) comes once, on the first load.",
            "",
            f"The explorer reads rollups (`metrics/rollups.py`), A against B pair indexes (`metrics/pairs.py`); "
            f"recomputing those of both campaigns "
            f"(2 x {info['values_per_campaign']:,} values, what an ingest of a whole campaign adds at its end, or "
            f"`manage.py metrics_rollups_rebuild`) took {info.get('rollups_s', 0):.1f} s in this run.",
            DASH_END,
        ]
    )
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    notes = _notes()
    if notes and NOTES_START in text and NOTES_END in text:
        text = _replace_block(
            text, NOTES_START, NOTES_END, f"{NOTES_START}\n{notes}\n{NOTES_END}", before="## Re-running"
        )
    text = _replace_block(text, DASH_START, DASH_END, block, before=NOTES_START)
    RESULTS.write_text(text)
    print(
        f"\nDashboards section written to {RESULTS.relative_to(ROOT)} ({(time.perf_counter() - started) / 60:.1f} min)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measured operation (default 3)")
    parser.add_argument(
        "--only",
        choices=["upload", "tag", "orchestration", "selection", "dashboards"],
        help="run one of the benchmarks",
    )
    parser.add_argument(
        "--orchestration-runs", type=int, default=1, help="runs of the orchestration benchmark (default 1, ~3 min each)"
    )
    parser.add_argument("--save", metavar="FILE", help="also write the raw results as JSON to FILE")
    parser.add_argument("--no-results", action="store_true", help="do not rewrite benchmarks/RESULTS.md")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--args", default="{}", help=argparse.SUPPRESS)
    options = parser.parse_args()

    if options.worker:
        _django()
        result = WORKERS[options.worker](**json.loads(options.args))
        print(json.dumps(result, default=str))
        return

    if options.only == "dashboards":
        _run_dashboards(options)
        return

    started = time.perf_counter()
    env = _environment()
    print(f"Benchmarks on {env['DATABASE_URL']}")
    _ensure_database(env["DATABASE_URL"])
    if options.only == "selection":
        # Its own data (no Butler repo needed): migrate, build once, measure.
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], env=env, cwd=ROOT, check=True)
        print("Selection benchmark (builds 1M exposures and 10M tag rows on the first run, then reuses them)...")
        result = _spawn("selection", repeat=options.repeat if options.repeat >= 10 else 30)
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import selection as bench

        print(bench.table(result))
        for goal, ok, value in bench.verdicts(result):
            print(f"{'MET    ' if ok else 'NOT MET'}  {goal}: {value}")
        if not options.no_results:
            _selection_results(result)
            print(
                f"\nSelection section written to {RESULTS.relative_to(ROOT)} ({(time.perf_counter() - started) / 60:.1f} min)"
            )
        return
    print("Setting up (migrate, Butler repo, mirror, CSV files)...")
    info = _spawn("setup")
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in LABELS}
    orchestration_runs: list[dict[str, Any]] = []
    try:
        if options.only in (None, "tag"):
            # Untimed: the first resolution after a while reads the registry file from disk.
            _spawn("tag_bare", collection=f"bench/tagged/warmup-{os.getpid()}", version_id=info["tag_version_id"])
        for i in range(options.repeat if options.only != "orchestration" else 0):
            print(f"Run {i + 1} of {options.repeat}")
            if options.only in (None, "upload"):
                for name in ("copy_plain", "upload_ours", "copy_settable"):
                    results[name].append(_spawn(name))
                    print(f"  {LABELS[name]:55s} {results[name][-1]['seconds']:7.2f} s")
            if options.only in (None, "tag"):
                for name in ("tag_bare", "tag_ours"):
                    collection = f"bench/tagged/{name}-{os.getpid()}-{i}"
                    results[name].append(_spawn(name, collection=collection, version_id=info["tag_version_id"]))
                    print(f"  {LABELS[name]:55s} {results[name][-1]['seconds']:7.2f} s")
        if options.only in (None, "orchestration"):
            for i in range(options.orchestration_runs):
                print(f"Orchestration, run {i + 1} of {options.orchestration_runs} (1,000 groups, no-op WMS)")
                orchestration_runs.append(_spawn("orchestration"))
                print(f"  {_orchestration_module().verdict(orchestration_runs[-1:])[2]}")
    finally:
        _spawn("cleanup", tag_version_id=info["tag_version_id"])
    elapsed = time.perf_counter() - started
    if options.save:
        Path(options.save).write_text(
            json.dumps({"results": results, "orchestration": orchestration_runs, "info": info}, indent=1, default=str)
        )
    if options.only == "orchestration":
        print()
        print(_orchestration_module().table(orchestration_runs))
        if not options.no_results:
            _update_orchestration_results(orchestration_runs)
            print(f"\nOrchestration section written to {RESULTS.relative_to(ROOT)} ({elapsed / 60:.1f} min)")
        return
    if options.only:
        for name, runs in results.items():
            if runs:
                print(
                    f"{LABELS[name]:55s} median {_median(runs):7.2f} s  peak {max(r['peak_mb'] for r in runs):.0f} MB"
                )
        return
    summary = _summary(results)
    before = json.loads(BEFORE.read_text()) if BEFORE.exists() else None
    machine = _machine()
    print()
    print(_table(results, summary, before))
    print()
    verdicts = _verdicts(summary)
    if orchestration_runs:
        print(_orchestration_module().table(orchestration_runs))
        print()
        verdicts.append(_orchestration_module().verdict(orchestration_runs))
    for goal, ok, result in verdicts:
        print(f"{'MET    ' if ok else 'NOT MET'}  {goal}: {result}")
    if not options.no_results:
        _write_results(results, summary, machine, info, before, elapsed, options.repeat, orchestration_runs)
        print(f"\nWritten to {RESULTS.relative_to(ROOT)} ({elapsed / 60:.1f} min)")
    if options.save:
        Path(options.save).write_text(
            json.dumps({"results": results, "summary": summary, "info": info}, indent=1, default=str)
        )


if __name__ == "__main__":
    main()
