"""Running one campaign group as a BPS workflow: plain Python in, plain Python out.

The executor of the campaign manager describes a group with a :class:`GroupSubmitSpec`,
renders the BPS submit file with :func:`render_submit_yaml`, and runs it in two phases:

1. :func:`prepare` builds the QuantumGraph and the workflow (about 2 s for a small graph:
   ``pipetask qgraph`` runs in a subprocess). It is the preflight: an empty graph raises
   :class:`EmptyGraphError`. The run name and submit directory are known from here on
   (and already from the spec), so the caller records them before step 2.
2. :func:`run_prepared` hands the workflow to the WMS. For Parsl the whole workflow runs
   *inside this call* (jobs are subprocesses) and the result carries the final state and
   progress; for HTCondor/PanDA it returns after submission with the WMS run id.

Progress:

- :func:`progress` reads the submit directory and the repository's datastore: for every
  quantum of the graph, the ``<label>_metadata`` dataset exists when it succeeded, the
  ``<label>_log`` dataset without metadata means it failed (the log carries the exception
  type and message), otherwise it is blocked (an upstream quantum failed), running (its
  job's log file exists) or pending. It works while the workflow runs (the jobs write
  through a quantum-backed butler before the final job registers the datasets) and after,
  for any WMS whose jobs write to a datastore this process can read.
- :func:`report` asks the WMS (``BaseWmsService.report``): job counts, for HTCondor/PanDA.

The LSST middleware is imported lazily inside functions (``import lsst.daf.butler`` costs
about a second). ``bps/submit-template.yaml`` and ``bps/README.md`` document the submit file.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import logging
import os
import re
import shlex
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "ATTEMPT_LOG_FILE",
    "FINISHED_FILE",
    "TEMPLATE_PATH",
    "WMS_SERVICE_CLASSES",
    "WORKFLOW_FILE",
    "BpsAdapterError",
    "EmptyGraphError",
    "FailedQuantum",
    "GroupProgress",
    "GroupSubmitSpec",
    "PreparedWorkflow",
    "QuantumGraphError",
    "SubmitResult",
    "WorkflowError",
    "build_submit_config",
    "cancel",
    "job_environment",
    "load_prepared",
    "prepare",
    "progress",
    "qgraph_options",
    "render_submit_yaml",
    "report",
    "run_prepared",
    "submit",
    "write_config_override_file",
]

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_PATH = PROJECT_ROOT / "bps" / "submit-template.yaml"

WMS_SERVICE_CLASSES: dict[str, str] = {
    "parsl": "lsst.ctrl.bps.parsl.ParslService",
    "htcondor": "lsst.ctrl.bps.htcondor.HTCondorService",
    "panda": "lsst.ctrl.bps.panda.PanDAService",
    "noop": "lsst_adapter.bps_noop.NoopService",
}
# WMSs whose submit() runs the whole workflow before returning.
_BLOCKING_SERVICES = frozenset({"lsst.ctrl.bps.parsl.ParslService", "lsst.ctrl.bps.parsl.service.ParslService"})

# Files this adapter adds to a BPS submit directory.
WORKFLOW_FILE = "cm_workflow.json"  # written by prepare(): graph, jobs, quanta of each job
FINISHED_FILE = "cm_finished.json"  # written by run_prepared() when a blocking WMS returned
ATTEMPT_LOG_FILE = "cm_attempt.log"  # what BPS, pipetask (qgraph) and Parsl logged in prepare() and run_prepared()
ATTEMPT_LOG_MAX_BYTES = 50 * 1024 * 1024  # a runaway log stops here (one line says so), the disk stays bounded
# Loggers whose records go to the attempt's log file, not to the process's console, during prepare/run_prepared.
_CAPTURED_LOGGERS = ("lsst", "parsl")

_PLACEHOLDER = re.compile(r"<spec:([a-z_]+)>")
_STATE_ORDER = ("SUCCEEDED", "FAILED", "RUNNING", "PENDING")


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


class BpsAdapterError(Exception):
    """Something in the BPS submission failed; the message says what and where to look."""


class EmptyGraphError(BpsAdapterError):
    """The QuantumGraph of the group is empty: nothing to run (bad query, or all done already)."""


class QuantumGraphError(BpsAdapterError):
    """``pipetask qgraph`` failed for another reason than an empty graph."""


class WorkflowError(BpsAdapterError):
    """The WMS could not run the workflow (init job, final job or the WMS itself failed)."""


# --------------------------------------------------------------------------------------
# Plain data
# --------------------------------------------------------------------------------------


@dataclass
class GroupSubmitSpec:
    """Everything needed to render the BPS submit file of one group."""

    pipeline_yaml: str  # path, optionally with "#label,label" or "#subset"
    butler_config: str  # repo root (or butler.yaml, or alias)
    input_collections: list[str]
    data_query: str
    output: str  # the group's CHAINED collection
    output_run: str  # this attempt's RUN collection
    submit_dir: str  # must not exist yet; BPS creates it
    payload_name: str
    compute_site: str = "local"
    wms: str = "parsl"  # parsl | htcondor | panda | noop
    request_memory: int = 2048  # MB per job
    request_cpus: int = 1
    data_id_tables: list[str] = field(default_factory=list)  # ECSV files -> --data-id-table
    skip_existing_in: list[str] = field(default_factory=list)  # rescue -> --skip-existing-in
    config_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> {field: value} -> -c
    config_files: dict[str, list[str]] = field(default_factory=dict)  # label -> [override .py files] -> -C
    extra: dict[str, Any] = field(default_factory=dict)  # other BPS keys (campaign settings)
    environment: dict[str, str] | None = None  # job environment; default job_environment()


@dataclass
class FailedQuantum:
    """One failed quantum: what, where, why."""

    task_label: str
    data_id: dict[str, Any]
    exception_type: str
    message: str
    quantum_id: str | None = None
    log: str | None = None  # the job's log file (stdout+stderr of pipetask), if known
    log_dataset: str | None = None  # URI of the quantum's <label>_log dataset, if written

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class GroupProgress:
    """Counts of a group's workflow. ``unit`` is "quanta" (from the Butler) or "jobs" (from the WMS)."""

    total: int
    succeeded: int = 0
    failed: int = 0
    running: int = 0
    pending: int = 0
    blocked: int = 0  # not run because something upstream failed
    state: str = "PENDING"  # a WmsStates name: PENDING, RUNNING, SUCCEEDED, FAILED, ...
    unit: str = "quanta"
    by_task: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: list[FailedQuantum] = field(default_factory=list)
    finished: bool = False  # the workflow is over (nothing will change without a rescue)
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class PreparedWorkflow:
    """A workflow whose QuantumGraph is built and which is ready to submit."""

    run_name: str
    submit_dir: str
    qgraph_file: str
    quanta: int
    quanta_by_task: dict[str, int]
    jobs: int  # WMS jobs, pipetaskInit and finalJob included
    wms_service_class: str
    butler_config: str
    output: str
    output_run: str
    prepare_seconds: float
    _config: Any = field(default=None, repr=False, compare=False)
    _wms_workflow: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if not f.name.startswith("_")}


@dataclass
class SubmitResult:
    """What the WMS said after submission (and, for Parsl, after the whole run)."""

    run_name: str
    run_id: str | None  # WMS id; None for Parsl (the submit dir identifies the run)
    submit_dir: str
    qgraph_file: str
    quanta: int
    state: str  # SUCCEEDED / FAILED when the run happened inside the call; else the WMS's state
    finished: bool  # True when the workflow ran inside the call (Parsl)
    progress: GroupProgress | None = None
    prepare_seconds: float = 0.0
    run_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------
# Rendering the submit file
# --------------------------------------------------------------------------------------


def job_environment(env_extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment variables the BPS jobs need, for this interpreter's venv and this project.

    ``CTRL_MPEXEC_DIR``/``DAF_BUTLER_DIR``: BPS runs ``${CTRL_MPEXEC_DIR}/bin/pipetask`` and
    ``${DAF_BUTLER_DIR}/bin/butler``; a pip install puts both in ``<venv>/bin``.
    ``PYTHONPATH``: the project root first, so ``demo_pipeline`` tasks import in the jobs.
    ``PATH``: ``<venv>/bin`` first (Parsl's HighThroughputExecutor starts ``interchange.py``
    and ``process_worker_pool.py`` from ``PATH``).
    """
    bin_dir = Path(sys.executable).parent
    venv = Path(sys.prefix)
    if not (venv / "bin" / "pipetask").exists() and (bin_dir / "pipetask").exists():
        venv = bin_dir.parent
    paths = [str(PROJECT_ROOT), *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    env = {
        "CTRL_MPEXEC_DIR": str(venv),
        "DAF_BUTLER_DIR": str(venv),
        "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths)),
        "PATH": os.pathsep.join(dict.fromkeys([str(venv / "bin"), *os.environ.get("PATH", "").split(os.pathsep)])),
    }
    env.update(env_extra or {})
    return env


def _check_bps_safe(what: str, value: str) -> None:
    """BPS formats ``{name}`` and expands ``$NAME`` in every string value: refuse them in spec values."""
    for bad in ("{", "}", "$"):
        if bad in value:
            raise ValueError(f"{what} must not contain {bad!r} (BPS would expand it): {value!r}")


def _quote(arg: str) -> str:
    """Shell-quote for BPS command lines (BPS splits them with shlex): double quotes when enough."""
    if re.fullmatch(r"[\w@%+=:,./\-]+", arg):
        return arg
    if not any(c in arg for c in '"\\`!'):
        return f'"{arg}"'
    return shlex.quote(arg)


def _override_value(value: Any) -> str:
    """The VALUE of ``-c LABEL:FIELD=VALUE``: pipe_base sets strings as is and eval()s the rest."""
    if isinstance(value, str):
        return value
    if isinstance(value, tuple):
        value = list(value)
    return repr(value)


def qgraph_options(spec: GroupSubmitSpec) -> str:
    """``extraQgraphOptions`` of the spec: data-ID tables, skip-existing-in, config files and overrides."""
    parts: list[str] = []
    for table in spec.data_id_tables:
        parts += ["--data-id-table", _quote(str(table))]
    for collection in spec.skip_existing_in:
        parts += ["--skip-existing-in", _quote(collection)]
    for label in sorted(spec.config_files):
        for path in spec.config_files[label]:
            parts += ["-C", _quote(f"{label}:{path}")]
    for label in sorted(spec.config_overrides):
        for name in sorted(spec.config_overrides[label]):
            value = _override_value(spec.config_overrides[label][name])
            if "=" in value:
                raise ValueError(
                    f"config_overrides[{label!r}][{name!r}] = {value!r} contains '=', which `pipetask -c` "
                    "cannot carry. Use key:value data-ID patterns (failDataIds) or spec.config_files "
                    "(see write_config_override_file)."
                )
            parts += ["-c", _quote(f"{label}:{name}={value}")]
    options = " ".join(parts)
    _check_bps_safe("extraQgraphOptions", options)
    return options


def write_config_override_file(path: str | Path, overrides: Mapping[str, Any]) -> Path:
    """Write a pex_config override file (``config.FIELD = VALUE`` lines) for ``spec.config_files``.

    Values are written with ``repr`` so any Python literal works, ``=`` included.
    """
    path = Path(path)
    lines = [f"config.{name} = {value!r}\n" for name, value in sorted(overrides.items())]
    path.write_text("".join(lines))
    return path


def _placeholder_values(spec: GroupSubmitSpec) -> dict[str, Any]:
    if spec.wms not in WMS_SERVICE_CLASSES:
        raise ValueError(f"Unknown wms {spec.wms!r}; expected one of {', '.join(sorted(WMS_SERVICE_CLASSES))}.")
    if '"' in spec.data_query:
        raise ValueError('data_query must not contain double quotes (BPS passes it as -d "..."); use single quotes.')
    for name in ("pipeline_yaml", "butler_config", "data_query", "output", "output_run", "submit_dir"):
        _check_bps_safe(name, str(getattr(spec, name)))
    for collection in spec.input_collections:
        _check_bps_safe("input_collections", collection)
    env = spec.environment if spec.environment is not None else job_environment()
    return {
        "pipeline_yaml": str(spec.pipeline_yaml),
        "payload_name": spec.payload_name,
        "butler_config": str(spec.butler_config),
        "in_collection": ",".join(spec.input_collections),
        "data_query": spec.data_query,
        "output": spec.output,
        "output_run": spec.output_run,
        "submit_dir": str(spec.submit_dir),
        "compute_site": spec.compute_site,
        "wms_service_class": WMS_SERVICE_CLASSES[spec.wms],
        "request_memory": int(spec.request_memory),
        "request_cpus": int(spec.request_cpus),
        "extra_qgraph_options": qgraph_options(spec),
        "ctrl_mpexec_dir": env.get("CTRL_MPEXEC_DIR", ""),
        "daf_butler_dir": env.get("DAF_BUTLER_DIR", ""),
        "pythonpath": env.get("PYTHONPATH", ""),
    }


def _fill(node: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(node, dict):
        return {key: _fill(value, values) for key, value in node.items()}
    if isinstance(node, list):
        return [_fill(value, values) for value in node]
    if isinstance(node, str):
        whole = _PLACEHOLDER.fullmatch(node)
        if whole:
            return values[whole.group(1)]
        return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), node)
    return node


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``extra`` into ``base`` (in place); ``"a.b"`` keys address nested mappings."""
    for key, value in extra.items():
        target, parts = base, str(key).split(".")
        for part in parts[:-1]:
            if not isinstance(target.get(part), dict):
                target[part] = {}
            target = target[part]
        last = parts[-1]
        if isinstance(value, Mapping) and isinstance(target.get(last), dict):
            _merge(target[last], value)
        else:
            target[last] = copy.deepcopy(value)
    return base


_TEMPLATES: dict[str, tuple[float, int, Any]] = {}


def _load_template(template_path: str | Path) -> Any:
    """The parsed template, re-read only when its file changed (mtime, size).

    Shared between calls: callers must not change it (``_fill`` builds new containers).
    """
    path = Path(template_path)
    stat = path.stat()
    cached = _TEMPLATES.get(str(path))
    if cached is None or cached[:2] != (stat.st_mtime, stat.st_size):
        cached = (stat.st_mtime, stat.st_size, yaml.safe_load(path.read_text()))
        _TEMPLATES[str(path)] = cached
    return cached[2]


def build_submit_config(spec: GroupSubmitSpec, template_path: str | Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The submit file as a dict: the template with the spec's values, then ``spec.extra`` merged on top."""
    template = _load_template(template_path)
    config = _fill(template, _placeholder_values(spec))
    if not config["extraQgraphOptions"]:
        config["extraQgraphOptions"] = ""
    extra = dict(spec.extra)
    # Parsl does not read numberOfRetries (HTCondor/PanDA do): give it the same meaning.
    if spec.wms == "parsl" and "numberOfRetries" in extra:
        site = config.setdefault("site", {}).setdefault(spec.compute_site, {})
        site["retries"] = int(extra["numberOfRetries"])
    _merge(config, extra)
    return config


def render_submit_yaml(spec: GroupSubmitSpec, template_path: str | Path = TEMPLATE_PATH) -> str:
    """The BPS submit file of a group, as YAML text (deterministic for a given spec)."""
    config = build_submit_config(spec, template_path)
    header = (
        f"# BPS submit file of {spec.payload_name} ({spec.output_run}); rendered from {Path(template_path).name}.\n"
    )
    # libyaml's dumper writes the same text as yaml.safe_dump, in half the time.
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return header + yaml.dump(config, Dumper=dumper, sort_keys=False, default_flow_style=False, width=1000)


# --------------------------------------------------------------------------------------
# Submitting
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _environ(env: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration (BPS expands them; Parsl's jobs inherit them).

    Not thread-safe: one workflow per process at a time (Parsl allows only one anyway).
    """
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _qgraph_failure(submit_path: str, exc: Exception) -> BpsAdapterError:
    out = Path(submit_path) / "quantumGraphGeneration.out"
    text = out.read_text(errors="replace") if out.exists() else ""
    errors = [line for line in text.splitlines() if " ERROR" in line or line.startswith(("Error:", "ERROR"))]
    if "QuantumGraph was empty" in text or "QuantumGraph contains no quanta" in text:
        detail = "\n".join(errors[:5]) or "the graph builder found no quanta"
        return EmptyGraphError(f"The QuantumGraph is empty ({out}):\n{detail}")
    tail = "\n".join(text.splitlines()[-30:])
    return QuantumGraphError(f"pipetask qgraph failed ({exc}); see {out}:\n{tail}")


def _job_table(generic_workflow: Any, wms_workflow: Any) -> dict[str, dict[str, Any]]:
    """Job name -> label, quantum IDs and (Parsl) log files, from the generic and WMS workflows."""
    wms_jobs = getattr(wms_workflow, "jobs", None) or {}
    table: dict[str, dict[str, Any]] = {}
    for name in generic_workflow:
        job = generic_workflow.get_job(name)
        node_ids = str(job.cmdvals.get("qgraphNodeId", "") or "")
        entry: dict[str, Any] = {"label": job.label, "quanta": [n for n in node_ids.split(",") if n]}
        wms_job = wms_jobs.get(name) if isinstance(wms_jobs, Mapping) else None
        for stream in ("stdout", "stderr"):
            if wms_job is not None and getattr(wms_job, stream, None):
                entry[stream] = str(getattr(wms_job, stream))
        table[name] = entry
    final = generic_workflow.get_final()
    if final is not None and hasattr(final, "label"):
        table[final.name] = {"label": final.label, "quanta": []}
    return table


class _AttemptLogHandler(logging.Handler):
    """Writes records to ``<submit_dir>/cm_attempt.log`` once BPS has created the directory (it must not exist
    before ``init_submission``); what comes earlier waits in memory (a bounded number of records)."""

    _EARLY_RECORDS = 5000

    def __init__(self, submit_dir: str | Path) -> None:
        super().__init__(logging.NOTSET)
        self.path = Path(submit_dir) / ATTEMPT_LOG_FILE
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self._stream: Any = None
        self._early: list[str] = []
        self._written = 0
        self._full = False

    def _open(self) -> bool:
        if self._stream is None and self.path.parent.is_dir():
            self._stream = open(self.path, "a", encoding="utf-8", errors="replace")  # noqa: SIM115 - closed in close()
            for line in self._early:
                self._write(line)
            self._early.clear()
        return self._stream is not None

    def _write(self, line: str) -> None:
        if self._full:
            return
        size = len(line.encode("utf-8", errors="replace"))
        if self._written + size > ATTEMPT_LOG_MAX_BYTES:
            self._stream.write(f"... the log stops here: it reached {ATTEMPT_LOG_MAX_BYTES} bytes\n")
            self._full = True
            return
        self._stream.write(line)
        self._written += size

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
            if self._open():
                self._write(line)
                self._stream.flush()
            elif len(self._early) < self._EARLY_RECORDS:
                self._early.append(line)
        except Exception:  # logging must never break the run
            self.handleError(record)

    def close(self) -> None:
        try:
            self._open()  # the directory may exist by now: keep what was said before
            if self._stream is not None:
                self._stream.close()
                self._stream = None
        finally:
            super().close()


@contextlib.contextmanager
def _attempt_log(submit_dir: str | Path | None) -> Iterator[None]:
    """Send the records of the middleware's loggers (BPS, the ``pipetask qgraph`` output BPS relays, Parsl) to the
    attempt's log file in its submit directory instead of the console, for the duration.

    Not thread-safe, like :func:`_environ`: one workflow per process at a time.
    """
    if not submit_dir:
        yield
        return
    handler = _AttemptLogHandler(submit_dir)
    saved = []
    for name in _CAPTURED_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.propagate))
        logger.addHandler(handler)
        logger.propagate = False
    try:
        yield
    finally:
        for logger, propagate in saved:
            logger.removeHandler(handler)
            logger.propagate = propagate
        handler.close()


def _submit_dir_of(submit_yaml_path: str | Path) -> str | None:
    """The ``submitPath`` a rendered submit file names (before BPS creates it), or None if it cannot tell."""
    try:
        config = yaml.safe_load(Path(submit_yaml_path).read_text())
    except Exception:
        return None
    value = config.get("submitPath") if isinstance(config, dict) else None
    return value if isinstance(value, str) and "{" not in value and "$" not in value else None


def prepare(submit_yaml_path: str | Path, *, env_extra: Mapping[str, str] | None = None) -> PreparedWorkflow:
    """Build the QuantumGraph and the WMS workflow (BPS's init, acquire, cluster, transform, prepare).

    Creates the submit directory (it must not exist). Raises :class:`EmptyGraphError` for an
    empty graph (the preflight), :class:`QuantumGraphError` when ``pipetask qgraph`` fails.
    """
    from lsst.ctrl.bps import BpsSubprocessError
    from lsst.ctrl.bps.initialize import (
        init_submission,
        out_collection_validator,
        output_run_validator,
        submit_path_validator,
    )
    from lsst.ctrl.bps.pre_transform import acquire_quantum_graph, cluster_quanta
    from lsst.ctrl.bps.prepare import prepare as bps_prepare
    from lsst.ctrl.bps.transform import transform

    started = time.monotonic()
    with _environ(job_environment(env_extra)), _attempt_log(_submit_dir_of(submit_yaml_path)):
        logging.getLogger("lsst.ctrl.bps").info("Preparing %s", submit_yaml_path)
        config = init_submission(
            str(submit_yaml_path),
            validators=[submit_path_validator, output_run_validator, out_collection_validator],
            runWmsSubmissionChecks=True,
        )
        submit_path = config[".bps_defined.submitPath"]
        try:
            qgraph_file, qgraph = acquire_quantum_graph(config, out_prefix=submit_path)
        except BpsSubprocessError as exc:
            raise _qgraph_failure(submit_path, exc) from exc
        if len(qgraph) == 0:
            raise EmptyGraphError(f"The QuantumGraph {qgraph_file} has no quanta.")
        config[".bps_defined.runQgraphFile"] = qgraph_file
        clustered = cluster_quanta(config, qgraph, config["uniqProcName"])
        generic_workflow, generic_config = transform(config, clustered, submit_path)
        wms_workflow = bps_prepare(generic_config, generic_workflow, submit_path)

    quanta_by_task = {label: len(ids) for label, ids in qgraph.quanta_by_task.items()}
    _, butler_config = generic_config.search("butlerConfig")
    _, output = generic_config.search("output")
    prepared = PreparedWorkflow(
        run_name=generic_workflow.name,
        submit_dir=str(submit_path),
        qgraph_file=str(qgraph_file),
        quanta=len(qgraph),
        quanta_by_task=quanta_by_task,
        jobs=len(generic_workflow) + (1 if generic_workflow.get_final() is not None else 0),
        wms_service_class=str(generic_config["wmsServiceClass"]),
        butler_config=str(butler_config),
        output=str(output),
        output_run=str(generic_config["outputRun"]),
        prepare_seconds=round(time.monotonic() - started, 3),
        _config=generic_config,
        _wms_workflow=wms_workflow,
    )
    info = prepared.to_dict() | {"jobs_table": _job_table(generic_workflow, wms_workflow)}
    (Path(submit_path) / WORKFLOW_FILE).write_text(json.dumps(info, indent=1, sort_keys=True))
    return prepared


def load_prepared(submit_dir: str | Path) -> PreparedWorkflow:
    """A :class:`PreparedWorkflow` from its submit directory (to run it in another process; Parsl only)."""
    info = json.loads((Path(submit_dir) / WORKFLOW_FILE).read_text())
    info.pop("jobs_table", None)
    return PreparedWorkflow(**info)


def _service(service_class: str | type, config: Any) -> Any:
    from lsst.utils import doImportType

    cls = doImportType(service_class) if isinstance(service_class, str) else service_class
    return cls(config)


def run_prepared(prepared: PreparedWorkflow, *, env_extra: Mapping[str, str] | None = None) -> SubmitResult:
    """Submit a prepared workflow. For Parsl this runs the whole workflow before returning.

    Failed quanta do not raise: the result's ``state`` is ``FAILED`` and ``progress.failures``
    lists them. :class:`WorkflowError` is raised when the WMS itself fails (for Parsl: the
    init job, the final job that registers outputs, or Parsl's start).
    """
    started = time.monotonic()
    wms_workflow, config = prepared._wms_workflow, prepared._config
    blocking = prepared.wms_service_class in _BLOCKING_SERVICES
    if wms_workflow is None:
        if not blocking:
            raise WorkflowError("Only Parsl workflows can be reloaded from their submit directory.")
        from lsst.ctrl.bps.parsl.workflow import ParslWorkflow

        wms_workflow = ParslWorkflow.read(prepared.submit_dir)
        config = wms_workflow.bps_config
    run_id: str | None = None
    error: str | None = None
    with _environ(job_environment(env_extra)), _attempt_log(prepared.submit_dir):
        logging.getLogger("lsst.ctrl.bps").info("Submitting %s to %s", prepared.run_name, prepared.wms_service_class)
        service = _service(prepared.wms_service_class, config)
        try:
            returned = service.submit(wms_workflow, config=config)
            run_id = getattr(returned or wms_workflow, "run_id", None)
        except Exception as exc:  # the WMS raises many kinds; the caller needs one
            error = f"{type(exc).__name__}: {exc}"
            logging.getLogger("lsst.ctrl.bps").error("The WMS failed: %s", error)
        finally:
            dfk = getattr(wms_workflow, "dfk", None)
            if dfk is not None:  # Parsl died half-way: free the process-wide DataFlowKernel
                with contextlib.suppress(Exception):
                    wms_workflow.shutdown()
    run_seconds = round(time.monotonic() - started, 3)
    if blocking:
        (Path(prepared.submit_dir) / FINISHED_FILE).write_text(
            json.dumps({"error": error, "run_seconds": run_seconds}, indent=1)
        )
    if error is not None:
        raise WorkflowError(
            f"{prepared.wms_service_class} failed for {prepared.run_name}: {error}. Logs in {prepared.submit_dir}/logs."
        )
    result = SubmitResult(
        run_name=prepared.run_name,
        run_id=None if run_id is None else str(run_id),
        submit_dir=prepared.submit_dir,
        qgraph_file=prepared.qgraph_file,
        quanta=prepared.quanta,
        state="PENDING",
        finished=blocking,
        prepare_seconds=prepared.prepare_seconds,
        run_seconds=run_seconds,
    )
    if blocking:
        result.progress = progress(prepared.submit_dir)
        result.state = result.progress.state
    else:
        try:
            state, _ = service.get_status(result.run_id)
            result.state = state.name
        except Exception:  # get_status is optional for plugins
            result.state = "PENDING"
    return result


def submit(submit_yaml_path: str | Path, *, env_extra: Mapping[str, str] | None = None) -> SubmitResult:
    """:func:`prepare` then :func:`run_prepared` (like ``bps submit``, but returning values)."""
    return run_prepared(prepare(submit_yaml_path, env_extra=env_extra), env_extra=env_extra)


# --------------------------------------------------------------------------------------
# Progress from the Butler (any WMS with a shared datastore; the only way for Parsl)
# --------------------------------------------------------------------------------------


def _tail(path: str | None, lines: int = 40) -> str:
    if not path or not os.path.exists(path):
        return ""
    with open(path, errors="replace") as fh:
        return "".join(fh.readlines()[-lines:])


def _exception_from_log(predicted: Any, logs: Any) -> tuple[str, str]:
    """Exception type and message of a failed quantum, from its ``<label>_log`` dataset."""
    with contextlib.suppress(Exception):
        from lsst.pipe.base.quantum_graph import ProvenanceQuantumScanModels

        scan = ProvenanceQuantumScanModels.from_metadata_and_logs(predicted, None, logs)
        exc = scan.attempts[-1].exception if scan.attempts else None
        if exc is not None:
            return exc.type_name, exc.message
    extra = getattr(logs, "extra", None) or {}
    if isinstance(extra, Mapping) and isinstance(extra.get("exception"), Mapping):
        return str(extra["exception"].get("type_name", "")), str(extra["exception"].get("message", ""))
    errors = [r.message for r in logs if r.levelname in ("ERROR", "CRITICAL")]
    return "", errors[-1] if errors else "failed without an exception in its log"


def _group_state(p: GroupProgress) -> str:
    if p.total and p.succeeded == p.total:
        return "SUCCEEDED"
    if p.finished or (p.failed + p.blocked and not p.running + p.pending):
        return "FAILED" if p.failed + p.blocked + p.pending + p.running else "SUCCEEDED"
    if p.running or p.succeeded or p.failed:
        return "RUNNING"
    return "PENDING"


def progress(
    submit_dir: str | Path,
    *,
    butler_config: str | None = None,
    qgraph_file: str | None = None,
    with_failures: bool = True,
) -> GroupProgress:
    """Quantum counts of a group's workflow, from its QuantumGraph and the datastore.

    ``submit_dir`` is the BPS submit directory (``prepare`` wrote ``cm_workflow.json`` there);
    ``butler_config``/``qgraph_file`` override what that file says. Per quantum:
    ``<label>_metadata`` stored → succeeded; ``<label>_log`` without metadata → failed (the
    log's exception); an upstream quantum failed → blocked; its job's log file exists →
    running; else pending (failed, once the workflow is known to be over).

    ``finished`` is True once :func:`run_prepared` returned for a Parsl run; until then the
    state stays ``RUNNING`` even when every quantum is done, because the final job (which
    registers the outputs in the repository) may still be running. Costs one file-existence
    check per quantum plus one log read per failed quantum (``with_failures=False`` skips them).
    """
    from lsst.daf.butler import QuantumBackedButler
    from lsst.pipe.base import automatic_connection_constants as acc
    from lsst.pipe.base.pipeline_graph import TaskImportMode
    from lsst.pipe.base.quantum_graph import PredictedQuantumGraphReader

    submit_path = Path(submit_dir)
    info_file = submit_path / WORKFLOW_FILE
    info: dict[str, Any] = json.loads(info_file.read_text()) if info_file.exists() else {}
    qgraph_file = qgraph_file or info.get("qgraph_file")
    if not qgraph_file:
        graphs = sorted(p for p in submit_path.glob("*.qg") if not p.stem.endswith("_orig"))
        if not graphs:
            raise FileNotFoundError(f"No QuantumGraph in {submit_path} (prepare() has not run there?).")
        qgraph_file = str(graphs[0])
    butler_config = butler_config or info.get("butler_config")
    if not butler_config:
        raise ValueError(f"butler_config is needed: {info_file} does not say it.")
    finished_file = submit_path / FINISHED_FILE
    finished = finished_file.exists()
    workflow_error = json.loads(finished_file.read_text()).get("error") if finished else None

    job_of: dict[str, dict[str, Any]] = {}
    for job in info.get("jobs_table", {}).values():
        for quantum_id in job.get("quanta", []):
            job_of[quantum_id] = job

    result = GroupProgress(total=0, finished=finished)
    status: dict[Any, str] = {}
    with PredictedQuantumGraphReader.open(qgraph_file, import_mode=TaskImportMode.DO_NOT_IMPORT) as reader:
        reader.read_dimension_data()
        reader.read_thin_graph()
        reader.read_quantum_datasets()
        components = reader.components
        pipeline_graph = reader.pipeline_graph
        qbb = QuantumBackedButler.from_predicted(
            butler_config,
            predicted_inputs=[],
            predicted_outputs=[],
            dimensions=pipeline_graph.universe,
            datastore_records={},
            dataset_types={node.name: node.dataset_type for node in pipeline_graph.dataset_types.values()},
        )
        try:
            upstream: dict[Any, list[Any]] = {}
            for before, after in components.thin_graph.edges:
                upstream.setdefault(after, []).append(before)
            order = [q.quantum_id for quanta in components.thin_graph.quanta.values() for q in quanta]
            quanta = components.quantum_datasets
            pending_check: list[Any] = []
            for quantum_id in order:
                predicted = quanta[quantum_id]
                (metadata,) = predicted.outputs[acc.METADATA_OUTPUT_CONNECTION_NAME]
                (log,) = predicted.outputs[acc.LOG_OUTPUT_CONNECTION_NAME]
                if qbb.stored(components.make_dataset_ref(metadata)):
                    status[quantum_id] = "succeeded"
                    continue
                log_ref = components.make_dataset_ref(log)
                if qbb.stored(log_ref):
                    status[quantum_id] = "failed"
                    if with_failures:
                        exc_type, message = _exception_from_log(predicted, qbb.get(log_ref))
                        job = job_of.get(str(quantum_id), {})
                        result.failures.append(
                            FailedQuantum(
                                task_label=predicted.task_label,
                                data_id=dict(log_ref.dataId.required),
                                exception_type=exc_type,
                                message=message,
                                quantum_id=str(quantum_id),
                                log=job.get("stderr"),
                                log_dataset=str(qbb.getURI(log_ref)),
                            )
                        )
                    continue
                pending_check.append(quantum_id)
        finally:
            qbb.close()

        # The thin graph lists quanta task by task in pipeline order: upstream first.
        for quantum_id in pending_check:
            if any(status.get(u) in ("failed", "blocked") for u in upstream.get(quantum_id, ())):
                status[quantum_id] = "blocked"
                continue
            job = job_of.get(str(quantum_id), {})
            started = bool(job.get("stderr")) and os.path.exists(job["stderr"])
            if finished:
                # The workflow is over and this quantum wrote no log: its job died (or never ran).
                status[quantum_id] = "failed"
                if with_failures:
                    predicted = quanta[quantum_id]
                    (log,) = predicted.outputs[acc.LOG_OUTPUT_CONNECTION_NAME]
                    message = workflow_error or ("job ended without a log" if started else "never ran")
                    tail = _tail(job.get("stderr"), 15)
                    result.failures.append(
                        FailedQuantum(
                            task_label=predicted.task_label,
                            data_id=dict(components.make_dataset_ref(log).dataId.required),
                            exception_type="JobError",
                            message=f"{message}\n{tail}".strip(),
                            quantum_id=str(quantum_id),
                            log=job.get("stderr"),
                        )
                    )
            else:
                status[quantum_id] = "running" if started else "pending"

        for label, thin_quanta in components.thin_graph.quanta.items():
            counts = {"total": len(thin_quanta), "succeeded": 0, "failed": 0, "running": 0, "pending": 0, "blocked": 0}
            for q in thin_quanta:
                counts[status[q.quantum_id]] += 1
            result.by_task[label] = counts
    for counts in result.by_task.values():
        result.total += counts["total"]
        result.succeeded += counts["succeeded"]
        result.failed += counts["failed"]
        result.running += counts["running"]
        result.pending += counts["pending"]
        result.blocked += counts["blocked"]
    result.state = _group_state(result)
    if not finished and info.get("wms_service_class") in _BLOCKING_SERVICES and result.state in ("SUCCEEDED", "FAILED"):
        # Parsl: the final job (which registers the outputs) may still be running.
        result.state = "RUNNING"
    if workflow_error:
        result.message = workflow_error
    return result


# --------------------------------------------------------------------------------------
# Progress from the WMS (HTCondor, PanDA): job counts
# --------------------------------------------------------------------------------------

_JOB_COLUMNS = {
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
    "RUNNING": "running",
    "PRUNED": "blocked",
    "DELETED": "failed",
}
_SPECIAL_JOBS = frozenset({"pipetaskInit", "finalJob", "mergeExecutionButler"})


def _service_fqn(wms: str, service_class: str | type | None) -> str | type:
    return service_class or WMS_SERVICE_CLASSES[wms]


def report(
    wms: str,
    run_id: str,
    *,
    service_class: str | type | None = None,
    hist: float = 7,
) -> GroupProgress:
    """Job counts of a submitted run from the WMS, through ctrl_bps's report API; ``unit`` is "jobs".

    ``lsst.ctrl.bps.report.retrieve_report`` asks the plugin's ``report`` (HTCondor: the schedd
    and the DAGMan files of the submit directory; PanDA: iDDS). ``service_class`` replaces the
    class that ``wms`` names (a dotted name, or a class, which is then asked directly). pipetaskInit
    and finalJob are left out of the counts; a failed one is listed in ``failures``. With
    single-quantum clustering (the default) a job is a quantum. A run the plugin calls
    SUCCEEDED although jobs failed (PanDA's "SubFinished") is FAILED here.
    """
    fqn = _service_fqn(wms, service_class)
    if isinstance(fqn, str):
        from lsst.ctrl.bps.report import retrieve_report

        runs, messages = retrieve_report(fqn, run_id=run_id, hist=hist, return_exit_codes=True)
        message = "\n".join(messages)
    else:
        runs, message = _service(fqn, {}).report(wms_workflow_id=run_id, hist=hist, return_exit_codes=True)
    if not runs:
        return GroupProgress(total=0, state="UNKNOWN", unit="jobs", message=message or f"No run {run_id}.")
    run = runs[0]
    result = GroupProgress(total=0, unit="jobs", message=message or "")
    if run.jobs:
        for job in run.jobs:
            counts = result.by_task.setdefault(
                job.label, {"total": 0, "succeeded": 0, "failed": 0, "running": 0, "pending": 0, "blocked": 0}
            )
            column = _JOB_COLUMNS.get(job.state.name, "pending")
            if job.state.name in ("FAILED", "DELETED"):
                exit_codes = (run.exit_code_summary or {}).get(job.label, [])
                result.failures.append(
                    FailedQuantum(
                        task_label=job.label,
                        data_id={},
                        exception_type=f"Job{job.state.name.title()}",
                        message=f"job {job.name} (WMS id {job.wms_id}) {job.state.name.lower()}"
                        + (f"; exit codes of {job.label} jobs: {exit_codes}" if exit_codes else ""),
                    )
                )
            counts["total"] += 1
            counts[column] += 1
    elif run.job_summary:
        for label, states in run.job_summary.items():
            counts = {"total": 0, "succeeded": 0, "failed": 0, "running": 0, "pending": 0, "blocked": 0}
            for state, number in states.items():
                counts["total"] += number
                counts[_JOB_COLUMNS.get(state.name, "pending")] += number
            result.by_task[label] = counts
    for label, counts in result.by_task.items():
        if label in _SPECIAL_JOBS:
            continue
        result.total += counts["total"]
        result.succeeded += counts["succeeded"]
        result.failed += counts["failed"]
        result.running += counts["running"]
        result.pending += counts["pending"]
        result.blocked += counts["blocked"]
    if run.job_summary and not run.jobs:
        for label, counts in result.by_task.items():
            if counts["failed"]:
                exit_codes = (run.exit_code_summary or {}).get(label, [])
                result.failures.append(
                    FailedQuantum(
                        task_label=label,
                        data_id={},
                        exception_type="JobFailed",
                        message=f"{counts['failed']} {label} job(s) failed"
                        + (f"; exit codes: {exit_codes}" if exit_codes else ""),
                    )
                )
    state = run.state.name if run.state is not None else None
    result.finished = state in ("SUCCEEDED", "FAILED", "DELETED")
    if state == "SUCCEEDED" and (result.failed or result.blocked or result.failures):
        state = "FAILED"
    result.state = state or _group_state(result)
    return result


def cancel(wms: str, run_id: str, *, service_class: str | None = None) -> tuple[bool, str]:
    """Cancel a submitted run through ctrl_bps's cancel API (``lsst.ctrl.bps.cancel.cancel``).

    ctrl_bps lists the run with the plugin's ``list_submitted_jobs`` and calls its ``cancel``
    (HTCondor: ``condor_rm`` of the DAGMan job; PanDA: iDDS abort). It prints what happened;
    that text is returned with whether the run was cancelled.
    """
    import io

    from lsst.ctrl.bps.cancel import cancel as bps_cancel

    fqn = str(_service_fqn(wms, service_class))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        bps_cancel(fqn, wms_id=run_id, require_bps=True)
    text = out.getvalue().strip()
    return "Successfully canceled" in text, text


# --------------------------------------------------------------------------------------
# A Parsl site without worker processes (module attribute created on first use)
# --------------------------------------------------------------------------------------


def _make_local_threads() -> type:
    from lsst.ctrl.bps.parsl.configuration import get_bps_config_value
    from lsst.ctrl.bps.parsl.site import SiteConfig
    from parsl.executors import ThreadPoolExecutor

    class LocalThreads(SiteConfig):
        """Parsl site running the jobs from a thread pool of the submitting process.

        Each job is still its own ``pipetask`` process (a bash app); only Parsl's
        interchange and worker-pool processes of ``sites.Local`` are saved (~10 s per run).
        ``site.<computeSite>.cores`` jobs run at once.
        """

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["resource_list"] = []  # a ThreadPoolExecutor refuses resource specifications
            super().__init__(*args, **kwargs)

        def get_executors(self) -> list[Any]:
            cores = get_bps_config_value(self.site, "cores", int, required=True)
            return [ThreadPoolExecutor(label="local", max_threads=cores)]

        def select_executor(self, job: Any) -> str:
            return "local"

    LocalThreads.__module__ = __name__
    LocalThreads.__qualname__ = "LocalThreads"
    return LocalThreads


def __getattr__(name: str) -> Any:
    # BPS imports site classes by dotted name; build this one lazily so importing
    # lsst_adapter.bps stays cheap (no parsl or ctrl_bps import).
    if name == "LocalThreads":
        cls = _make_local_threads()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
