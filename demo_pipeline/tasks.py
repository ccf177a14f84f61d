"""The four PipelineTasks of the demo pipeline (``pipelines/drp.yaml``), in the shape of Rubin's DRP.

``Step1Task`` (dimensions ``instrument, exposure, detector``)
    reads one ``raw`` (a dict of synthetic image statistics written by
    :func:`lsst_adapter.demo.build_demo_repo`) and writes

    - ``calexpSummary``: what a calibrated exposure of that detector would tell us
      (``psf_fwhm`` in arcsec, ``sky_background`` and ``sky_noise`` in counts,
      ``source_count``, ``zero_point`` and ``limiting_magnitude`` in mag, ...);
    - ``step1_metrics``: the same numbers as a metric bundle in the JSON shape of an
      ``analysis_tools`` ``MetricMeasurementBundle``.

``Step2Task`` (dimensions ``instrument, visit``)
    reads the ``calexpSummary`` of every detector of the visit's exposure (one-to-one
    visits: the QuantumGraph builder relates ``exposure`` to ``visit`` through the
    ``visit_definition`` join table, which the dimension universe always joins when both
    dimensions are present) and writes ``visitSummary`` and ``step2_metrics``.

``Step3Task`` (dimensions ``skymap, tract, patch, band``)
    a coadd-like summary of one patch in one band: reads the ``visitSummary`` of every visit
    of that band that overlaps the patch (the QuantumGraph builder relates visits and patches
    through their regions: the registry's spatial join, finer through ``visit_detector_region``
    when the data query names detectors) and writes ``coaddSummary`` (number of visits, the
    depth of their coadd, its PSF, ...) and ``step3_metrics``.

``Step4Task`` (dimensions ``skymap, tract``)
    reads the ``coaddSummary`` of every patch and band of a tract and writes ``tractSummary``
    and ``step4_metrics`` (patches, bands, median and shallowest depth).

Everything is a deterministic function of the raw content, so a rerun gives the same
numbers, and the bad exposures of the demo repo (poor seeing, a dome light left on)
stand out: larger ``psf_fwhm``, much larger ``sky_background``, brighter (smaller)
``limiting_magnitude``, fewer sources.

Science exposures only
    Step 1 is meant for science exposures. Campaigns restrict the graph in the data
    query with ``exposure.observation_type = 'science'`` (the pipeline itself declares
    nothing special). As a safety net for queries that forget it, ``Step1Task`` raises
    :class:`lsst.pipe.base.NoWorkFound` for a raw whose ``observation_type`` is not
    ``science`` (``scienceOnly``, default ``True``): the quantum then ends successfully
    with no outputs instead of producing a nonsense summary of a bias frame. Calibration
    exposures have no visits, so they never reach step 2. Note that when step 1 and step 2
    are in the same graph (``drp.yaml`` without a ``#label``), the graph builder's single
    data-ID query joins ``exposure`` to ``visit`` through ``visit_definition``, which already
    drops every exposure without a visit: only ``drp.yaml#step1`` alone can produce quanta
    for calibration exposures.

Fault injection (both tasks, off by default)
    ``failDataIds``: a list of data-ID patterns ``"key=value,key=value"``; a quantum whose
    data ID matches every ``key=value`` of one pattern raises :class:`InjectedFailure`
    (a ``RuntimeError``). ``"exposure=2025112100151"`` fails every detector of that exposure,
    ``"exposure=2025112100151,detector=4"`` only one. Keys may be any dimension of the
    quantum data ID, implied ones included (``band``, ``day_obs``, ``physical_filter``).
    ``key:value`` works as well as ``key=value`` and is what the ``pipetask`` command line
    needs: ``-c LABEL:field=value`` is split on ``=`` by the CLI and refuses a value that
    contains another ``=``. Use Python list syntax, quoted for the shell::

        -c "step1:failDataIds=['exposure:2025112100151,detector:4', 'exposure:2025112100152']"

    In a config file (``-C step1:overrides.py``) or a pipeline ``config:`` block the ``=``
    form works: ``config.failDataIds = ["exposure=2025112100151,detector=4"]``.

    ``failProbability``: fail a quantum with this probability; the draw is a hash of the
    task label, ``failSeed`` and the data ID, so the same quanta fail on every run.
"""

from __future__ import annotations

import hashlib
import math
import statistics
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import lsst.pex.config as pexConfig
from lsst.pipe.base import (
    InputQuantizedConnection,
    NoWorkFound,
    OutputQuantizedConnection,
    PipelineTask,
    PipelineTaskConfig,
    PipelineTaskConnections,
    QuantumContext,
    Struct,
)
from lsst.pipe.base import connectionTypes as cT

__all__ = [
    "FaultInjectionConfig",
    "InjectedFailure",
    "Step1Config",
    "Step1Connections",
    "Step1Task",
    "Step2Config",
    "Step2Connections",
    "Step2Task",
    "Step3Config",
    "Step3Connections",
    "Step3Task",
    "Step4Config",
    "Step4Connections",
    "Step4Task",
    "coadd_depth",
    "data_id_string",
    "fail_draw",
    "make_metric_bundle",
    "matching_fail_pattern",
    "parse_data_id_pattern",
]

REFERENCE_PACKAGE = "demo_pipeline"
STORAGE_CLASS = "StructuredDataDict"
# Namespace of the metric identifiers: uuid5(namespace, "<metric>|<data ID>") is stable across runs.
_METRIC_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://lsst.org/demo_pipeline/metrics")


# --------------------------------------------------------------------------------------
# Helpers (pure functions, importable and testable without a Butler)
# --------------------------------------------------------------------------------------


class InjectedFailure(RuntimeError):
    """Raised by a task for a quantum selected by its fault-injection config."""


def parse_data_id_pattern(pattern: str) -> dict[str, str]:
    """Parse ``"exposure=2025112100151,detector=4"`` into ``{"exposure": "2025112100151", "detector": "4"}``.

    ``key:value`` is accepted as well as ``key=value``: ``pipetask -c`` rejects a value containing
    a second ``=``, so on the command line write ``exposure:2025112100151,detector:4``.
    Raises `ValueError` for an empty pattern or an item that is not ``key=value`` / ``key:value``.
    """
    items: dict[str, str] = {}
    for raw_part in pattern.split(","):
        part = raw_part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=" if "=" in part else ":")
        key, value = key.strip(), value.strip().strip("'\"")
        if not sep or not key or not value:
            raise ValueError(
                f"Bad failDataIds pattern {pattern!r}: {part!r} is not key=value (or key:value). "
                "On the pipetask command line use a quoted Python list: "
                "-c \"step1:failDataIds=['exposure:2025112100151,detector:4']\"."
            )
        items[key] = value
    if not items:
        raise ValueError(f"Bad data ID pattern {pattern!r}: no key=value items.")
    return items


def matching_fail_pattern(patterns: Iterable[str], data_id: Mapping[str, Any]) -> str | None:
    """The first pattern all of whose ``key=value`` items match ``data_id`` (values compared as strings)."""
    for pattern in patterns:
        wanted = parse_data_id_pattern(pattern)
        if all(key in data_id and str(data_id[key]) == value for key, value in wanted.items()):
            return pattern
    return None


def data_id_string(data_id: Mapping[str, Any]) -> str:
    """``"detector=4,exposure=2025112100151,instrument=DemoCam"``: sorted keys, so independent of mapping order."""
    return ",".join(f"{key}={data_id[key]}" for key in sorted(data_id))


def fail_draw(label: str, seed: int, data_id: Mapping[str, Any]) -> float:
    """A number in [0, 1) that depends only on the label, the seed and the data ID."""
    digest = hashlib.sha256(f"{label}|{seed}|{data_id_string(data_id)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def metric_identifier(metric: str, data_id: Mapping[str, Any]) -> str:
    """A stable hex identifier of one measurement (a UUID5 of the metric name and the data ID)."""
    return uuid.uuid5(_METRIC_NAMESPACE, f"{metric}|{data_id_string(data_id)}").hex


def make_metric_bundle(
    actions: Mapping[str, Sequence[tuple[str, float | int | None, str]]],
    data_id: Mapping[str, Any],
    dataset_identifier: str | None,
) -> dict[str, Any]:
    """A metric bundle in the JSON shape of an ``analysis_tools`` ``MetricMeasurementBundle``.

    ``actions`` maps an action name to ``(name, value, unit)`` triples; the metric is called
    ``demo_pipeline.<name>``. Values are plain floats (or ``None`` when not measurable).
    """
    bundle: dict[str, Any] = {}
    for action, measurements in actions.items():
        rows: list[dict[str, Any]] = []
        for name, value, unit in measurements:
            metric = f"{REFERENCE_PACKAGE}.{name}"
            rows.append(
                {
                    "metric": metric,
                    "value": None if value is None else float(value),
                    "unit": unit,
                    "identifier": metric_identifier(metric, data_id),
                    "blob_refs": [],
                }
            )
        bundle[action] = rows
    bundle["__reference_package"] = REFERENCE_PACKAGE
    bundle["__timestamp_version"] = "run_timestamp"
    bundle["__dataset_identifier"] = dataset_identifier
    return bundle


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(statistics.median(present)) if present else None


# --------------------------------------------------------------------------------------
# Fault injection shared by both tasks
# --------------------------------------------------------------------------------------


class FaultInjectionConfig(pexConfig.Config):
    """Config fields that make chosen quanta fail (for testing retries and failure reports)."""

    failDataIds = pexConfig.ListField[str](
        doc=(
            "Data-ID patterns 'key=value,key=value' or 'key:value,key:value' (e.g. 'exposure=2025112100151,detector=4', "
            "or 'exposure:2025112100151' for every detector); a quantum matching one raises InjectedFailure."
        ),
        default=[],
    )
    failProbability = pexConfig.RangeField(
        dtype=float,
        doc="Probability that a quantum fails; deterministic (a hash of the label, failSeed and data ID).",
        default=0.0,
        min=0.0,
        max=1.0,
    )
    failSeed = pexConfig.Field[int](doc="Seed mixed into the failProbability draw.", default=0)

    def validate(self) -> None:
        super().validate()
        for pattern in self.failDataIds:
            parse_data_id_pattern(pattern)


def _maybe_fail(config: FaultInjectionConfig, label: str, data_id: Any) -> None:
    """Raise `InjectedFailure` if the quantum data ID is selected by the fault-injection config."""
    if not config.failDataIds and config.failProbability <= 0.0:
        return
    # The executor hands over expanded data IDs: match implied dimensions (band, day_obs, ...) too.
    full = data_id.mapping if data_id.hasFull() else data_id.required
    required = dict(data_id.required)
    pattern = matching_fail_pattern(config.failDataIds, full)
    if pattern is not None:
        raise InjectedFailure(
            f"Injected failure in {label} for data ID {{{data_id_string(required)}}}: "
            f"matches failDataIds entry {pattern!r}."
        )
    if config.failProbability > 0.0:
        draw = fail_draw(label, config.failSeed, required)
        if draw < config.failProbability:
            raise InjectedFailure(
                f"Injected failure in {label} for data ID {{{data_id_string(required)}}}: "
                f"draw {draw:.4f} < failProbability {config.failProbability} (failSeed {config.failSeed})."
            )


# --------------------------------------------------------------------------------------
# Step 1: per exposure × detector
# --------------------------------------------------------------------------------------


class Step1Connections(PipelineTaskConnections, dimensions=("instrument", "exposure", "detector")):
    raw = cT.Input(
        doc="Synthetic image statistics of one detector of one exposure.",
        name="raw",
        storageClass=STORAGE_CLASS,
        dimensions=("instrument", "exposure", "detector"),
    )
    calexpSummary = cT.Output(
        doc="Per-detector summary of the calibrated exposure (PSF, sky, sources, photometry).",
        name="calexpSummary",
        storageClass=STORAGE_CLASS,
        dimensions=("instrument", "exposure", "detector"),
    )
    step1_metrics = cT.Output(
        doc="Per-detector metrics in the JSON shape of an analysis_tools MetricMeasurementBundle.",
        name="step1_metrics",
        storageClass=STORAGE_CLASS,
        dimensions=("instrument", "exposure", "detector"),
    )


class Step1Config(PipelineTaskConfig, FaultInjectionConfig, pipelineConnections=Step1Connections):
    scienceOnly = pexConfig.Field[bool](
        doc="Raise NoWorkFound (no outputs, quantum still succeeds) for raws that are not science exposures.",
        default=True,
    )
    pixelScale = pexConfig.Field[float](doc="Pixel scale (arcsec/pixel).", default=0.2)
    opticsFwhm = pexConfig.Field[float](
        doc="FWHM (arcsec) of the optics, added in quadrature to the seeing to give the PSF FWHM.", default=0.25
    )
    minSourcesForPsf = pexConfig.Field[int](
        doc="Below this many sources the PSF is not measured (psf_fwhm and limiting_magnitude are None).",
        default=10,
    )
    datasetIdentifier = pexConfig.Field[str](
        doc="Value of '__dataset_identifier' in the metric bundles.", default="DemoCam", optional=True
    )


class Step1Task(PipelineTask):
    """Summarise one raw into a ``calexpSummary`` and a ``step1_metrics`` bundle."""

    ConfigClass = Step1Config
    _DefaultName = "step1"
    config: Step1Config

    def runQuantum(
        self,
        butlerQC: QuantumContext,
        inputRefs: InputQuantizedConnection,
        outputRefs: OutputQuantizedConnection,
    ) -> None:
        data_id = butlerQC.quantum.dataId
        assert data_id is not None, "quanta of a task with dimensions always have a data ID"
        _maybe_fail(self.config, self.getName(), data_id)
        inputs = butlerQC.get(inputRefs)
        outputs = self.run(**inputs, data_id=dict(data_id.required))
        butlerQC.put(outputs, outputRefs)

    def summarize(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """The ``calexpSummary`` of one raw (a plain dict of Python scalars)."""
        cfg = self.config
        dead_fraction = float(raw.get("dead_pixel_fraction", 0.0))
        source_count = round(int(raw.get("n_stars", 0)) * (1.0 - dead_fraction))
        seeing = float(raw.get("seeing_arcsec", 0.0))
        sky = float(raw.get("sky_counts", 0.0))
        read_noise = float(raw.get("read_noise", 0.0))
        exposure_time = float(raw.get("exposure_time", 0.0))
        zero_point = float(raw["zeropoint"]) if raw.get("zeropoint") is not None else None
        psf_fwhm: float | None = None
        limiting_magnitude: float | None = None
        if source_count >= cfg.minSourcesForPsf and seeing > 0:
            psf_fwhm = math.hypot(seeing, cfg.opticsFwhm)
            if zero_point is not None and exposure_time > 0:
                # 5-sigma point-source depth, sky- and read-noise-limited, over the PSF's effective area.
                area = 2.266 * (psf_fwhm / cfg.pixelScale) ** 2
                noise = math.sqrt(area * (sky + read_noise**2))
                limiting_magnitude = zero_point + 2.5 * math.log10(exposure_time) - 2.5 * math.log10(5.0 * noise)
        return {
            "obs_id": raw.get("obs_id"),
            "exposure": raw.get("exposure"),
            "detector": raw.get("detector"),
            "detector_name": raw.get("detector_name"),
            "band": raw.get("band"),
            "observation_type": raw.get("observation_type"),
            "exposure_time": exposure_time,
            "psf_fwhm": _round(psf_fwhm),
            "psf_fwhm_pixels": _round(None if psf_fwhm is None else psf_fwhm / cfg.pixelScale),
            "sky_background": _round(sky, 2),
            "sky_noise": _round(math.sqrt(max(sky, 0.0) + read_noise**2), 3),
            "source_count": source_count,
            "zero_point": _round(zero_point),
            "limiting_magnitude": _round(limiting_magnitude),
            "dead_pixel_fraction": dead_fraction,
            "bias_level": _round(raw.get("bias_level"), 2),
            "read_noise": _round(read_noise, 3),
        }

    def run(self, raw: Mapping[str, Any], data_id: Mapping[str, Any] | None = None) -> Struct:
        """Summarise ``raw``; ``data_id`` (required values) only feeds the metric identifiers."""
        if self.config.scienceOnly and raw.get("observation_type", "science") != "science":
            raise NoWorkFound(
                f"{raw.get('obs_id')} is a {raw.get('observation_type')!r} exposure; "
                "step1 only processes science exposures (query with exposure.observation_type='science')"
            )
        if data_id is None:
            data_id = {"exposure": raw.get("exposure"), "detector": raw.get("detector")}
        summary = self.summarize(raw)
        metrics = make_metric_bundle(
            {
                "psfMetrics": [("psf_fwhm", summary["psf_fwhm"], "arcsec")],
                "skyMetrics": [
                    ("sky_background", summary["sky_background"], "ct"),
                    ("sky_noise", summary["sky_noise"], "ct"),
                ],
                "photometryMetrics": [
                    ("zero_point", summary["zero_point"], "mag"),
                    ("limiting_magnitude", summary["limiting_magnitude"], "mag"),
                ],
                "sourceMetrics": [("source_count", summary["source_count"], "")],
                "detectorMetrics": [
                    ("dead_pixel_fraction", summary["dead_pixel_fraction"], ""),
                    ("read_noise", summary["read_noise"], "ct"),
                ],
            },
            data_id,
            self.config.datasetIdentifier,
        )
        return Struct(calexpSummary=summary, step1_metrics=metrics)


# --------------------------------------------------------------------------------------
# Step 2: per visit
# --------------------------------------------------------------------------------------


class Step2Connections(PipelineTaskConnections, dimensions=("instrument", "visit")):
    calexpSummaries = cT.Input(
        doc="calexpSummary of every detector of the visit's exposure (related through visit_definition).",
        name="calexpSummary",
        storageClass=STORAGE_CLASS,
        dimensions=("instrument", "exposure", "detector"),
        multiple=True,
    )
    visitSummary = cT.Output(
        doc="Per-visit summary: median PSF, total sources, number of detectors, worst detector.",
        name="visitSummary",
        storageClass=STORAGE_CLASS,
        dimensions=("instrument", "visit"),
    )
    step2_metrics = cT.Output(
        doc="Per-visit metrics in the JSON shape of an analysis_tools MetricMeasurementBundle.",
        name="step2_metrics",
        storageClass=STORAGE_CLASS,
        dimensions=("instrument", "visit"),
    )


class Step2Config(PipelineTaskConfig, FaultInjectionConfig, pipelineConnections=Step2Connections):
    datasetIdentifier = pexConfig.Field[str](
        doc="Value of '__dataset_identifier' in the metric bundles.", default="DemoCam", optional=True
    )


class Step2Task(PipelineTask):
    """Combine the ``calexpSummary`` of a visit's detectors into a ``visitSummary`` and ``step2_metrics``."""

    ConfigClass = Step2Config
    _DefaultName = "step2"
    config: Step2Config

    def runQuantum(
        self,
        butlerQC: QuantumContext,
        inputRefs: InputQuantizedConnection,
        outputRefs: OutputQuantizedConnection,
    ) -> None:
        data_id = butlerQC.quantum.dataId
        assert data_id is not None, "quanta of a task with dimensions always have a data ID"
        _maybe_fail(self.config, self.getName(), data_id)
        inputs = butlerQC.get(inputRefs)
        outputs = self.run(**inputs, data_id=dict(data_id.required))
        butlerQC.put(outputs, outputRefs)

    def run(self, calexpSummaries: Sequence[Mapping[str, Any]], data_id: Mapping[str, Any] | None = None) -> Struct:
        summaries = sorted(calexpSummaries, key=lambda s: (s.get("detector") is None, s.get("detector") or 0))
        if not summaries:
            raise NoWorkFound("No calexpSummary for this visit.")
        first = summaries[0]
        if data_id is None:
            data_id = {"visit": first.get("exposure")}

        def worst_key(s: Mapping[str, Any]) -> float:
            # A detector whose PSF could not be measured is worse than any measured one.
            return math.inf if s.get("psf_fwhm") is None else float(s["psf_fwhm"])

        worst = max(summaries, key=worst_key)
        psf = [s.get("psf_fwhm") for s in summaries]
        measured_psf = [p for p in psf if p is not None]
        summary = {
            "visit": data_id.get("visit", first.get("exposure")),
            "exposures": sorted({int(s["exposure"]) for s in summaries if s.get("exposure") is not None}),
            "obs_id": first.get("obs_id"),
            "band": first.get("band"),
            "n_detectors": len(summaries),
            "detectors": [s.get("detector") for s in summaries],
            "median_psf_fwhm": _round(_median(psf)),
            "max_psf_fwhm": _round(max(measured_psf) if measured_psf else None),
            "median_sky_background": _round(_median(s.get("sky_background") for s in summaries), 2),
            "total_source_count": int(sum(int(s.get("source_count") or 0) for s in summaries)),
            "median_zero_point": _round(_median(s.get("zero_point") for s in summaries)),
            "median_limiting_magnitude": _round(_median(s.get("limiting_magnitude") for s in summaries)),
            "max_dead_pixel_fraction": max(float(s.get("dead_pixel_fraction") or 0.0) for s in summaries),
            "worst_detector": worst.get("detector"),
            "worst_detector_name": worst.get("detector_name"),
            "worst_detector_psf_fwhm": worst.get("psf_fwhm"),
        }
        metrics = make_metric_bundle(
            {
                "visitPsfMetrics": [
                    ("median_psf_fwhm", summary["median_psf_fwhm"], "arcsec"),
                    ("max_psf_fwhm", summary["max_psf_fwhm"], "arcsec"),
                ],
                "visitSkyMetrics": [("median_sky_background", summary["median_sky_background"], "ct")],
                "visitPhotometryMetrics": [
                    ("median_zero_point", summary["median_zero_point"], "mag"),
                    ("median_limiting_magnitude", summary["median_limiting_magnitude"], "mag"),
                ],
                "visitSourceMetrics": [
                    ("total_source_count", summary["total_source_count"], ""),
                    ("n_detectors", summary["n_detectors"], ""),
                ],
            },
            data_id,
            self.config.datasetIdentifier,
        )
        return Struct(visitSummary=summary, step2_metrics=metrics)


# --------------------------------------------------------------------------------------
# Step 3: per (tract, patch, band): a coadd-like summary of the visits overlapping the patch
# --------------------------------------------------------------------------------------


def coadd_depth(depths: Iterable[float | None]) -> float | None:
    """The 5-sigma depth of a coadd of images of these depths (mag): the fluxes at the limit add in
    inverse variance, ``1.25 log10(sum 10**(0.8 m_i))``; ``None`` when no depth is known."""
    known = [float(m) for m in depths if m is not None]
    if not known:
        return None
    return 1.25 * math.log10(sum(10 ** (0.8 * m) for m in known))


class Step3Connections(PipelineTaskConnections, dimensions=("skymap", "tract", "patch", "band")):
    visitSummaries = cT.Input(
        doc="visitSummary of every visit of the band that overlaps the patch (related through their regions).",
        name="visitSummary",
        storageClass=STORAGE_CLASS,
        dimensions=("instrument", "visit"),
        multiple=True,
    )
    coaddSummary = cT.Output(
        doc="Coadd-like summary of one patch in one band: visits, depth of their coadd, PSF, sources.",
        name="coaddSummary",
        storageClass=STORAGE_CLASS,
        dimensions=("skymap", "tract", "patch", "band"),
    )
    step3_metrics = cT.Output(
        doc="Per-patch-and-band metrics in the JSON shape of an analysis_tools MetricMeasurementBundle.",
        name="step3_metrics",
        storageClass=STORAGE_CLASS,
        dimensions=("skymap", "tract", "patch", "band"),
    )


class Step3Config(PipelineTaskConfig, FaultInjectionConfig, pipelineConnections=Step3Connections):
    datasetIdentifier = pexConfig.Field[str](
        doc="Value of '__dataset_identifier' in the metric bundles.", default="DemoCam", optional=True
    )


class Step3Task(PipelineTask):
    """Combine the ``visitSummary`` of the visits overlapping a patch into a ``coaddSummary``."""

    ConfigClass = Step3Config
    _DefaultName = "step3"
    config: Step3Config

    def runQuantum(
        self,
        butlerQC: QuantumContext,
        inputRefs: InputQuantizedConnection,
        outputRefs: OutputQuantizedConnection,
    ) -> None:
        data_id = butlerQC.quantum.dataId
        assert data_id is not None, "quanta of a task with dimensions always have a data ID"
        _maybe_fail(self.config, self.getName(), data_id)
        inputs = butlerQC.get(inputRefs)
        outputs = self.run(**inputs, data_id=dict(data_id.required))
        butlerQC.put(outputs, outputRefs)

    def run(self, visitSummaries: Sequence[Mapping[str, Any]], data_id: Mapping[str, Any] | None = None) -> Struct:
        visits = sorted(visitSummaries, key=lambda s: int(s.get("visit") or 0))
        if not visits:
            raise NoWorkFound("No visitSummary overlaps this patch in this band.")
        data_id = dict(data_id or {"band": visits[0].get("band")})
        depth = coadd_depth(v.get("median_limiting_magnitude") for v in visits)
        psf = [v.get("median_psf_fwhm") for v in visits]
        summary = {
            "skymap": data_id.get("skymap"),
            "tract": data_id.get("tract"),
            "patch": data_id.get("patch"),
            "band": data_id.get("band", visits[0].get("band")),
            "n_visits": len(visits),
            "visits": [v.get("visit") for v in visits],
            "coadd_depth": _round(depth),
            "median_psf_fwhm": _round(_median(psf)),
            "max_psf_fwhm": _round(max((p for p in psf if p is not None), default=None)),
            "total_source_count": int(sum(int(v.get("total_source_count") or 0) for v in visits)),
            "median_sky_background": _round(_median(v.get("median_sky_background") for v in visits), 2),
        }
        metrics = make_metric_bundle(
            {
                "coaddDepthMetrics": [
                    ("coadd_depth", summary["coadd_depth"], "mag"),
                    ("n_visits", summary["n_visits"], ""),
                ],
                "coaddPsfMetrics": [("coadd_psf_fwhm", summary["median_psf_fwhm"], "arcsec")],
                "coaddSourceMetrics": [("coadd_source_count", summary["total_source_count"], "")],
            },
            data_id,
            self.config.datasetIdentifier,
        )
        return Struct(coaddSummary=summary, step3_metrics=metrics)


# --------------------------------------------------------------------------------------
# Step 4: per tract
# --------------------------------------------------------------------------------------


class Step4Connections(PipelineTaskConnections, dimensions=("skymap", "tract")):
    coaddSummaries = cT.Input(
        doc="coaddSummary of every patch and band of the tract.",
        name="coaddSummary",
        storageClass=STORAGE_CLASS,
        dimensions=("skymap", "tract", "patch", "band"),
        multiple=True,
    )
    tractSummary = cT.Output(
        doc="Per-tract summary: patches and bands covered, median and shallowest coadd depth.",
        name="tractSummary",
        storageClass=STORAGE_CLASS,
        dimensions=("skymap", "tract"),
    )
    step4_metrics = cT.Output(
        doc="Per-tract metrics in the JSON shape of an analysis_tools MetricMeasurementBundle.",
        name="step4_metrics",
        storageClass=STORAGE_CLASS,
        dimensions=("skymap", "tract"),
    )


class Step4Config(PipelineTaskConfig, FaultInjectionConfig, pipelineConnections=Step4Connections):
    datasetIdentifier = pexConfig.Field[str](
        doc="Value of '__dataset_identifier' in the metric bundles.", default="DemoCam", optional=True
    )


class Step4Task(PipelineTask):
    """Summarise the ``coaddSummary`` datasets of a tract into a ``tractSummary``."""

    ConfigClass = Step4Config
    _DefaultName = "step4"
    config: Step4Config

    def runQuantum(
        self,
        butlerQC: QuantumContext,
        inputRefs: InputQuantizedConnection,
        outputRefs: OutputQuantizedConnection,
    ) -> None:
        data_id = butlerQC.quantum.dataId
        assert data_id is not None, "quanta of a task with dimensions always have a data ID"
        _maybe_fail(self.config, self.getName(), data_id)
        inputs = butlerQC.get(inputRefs)
        outputs = self.run(**inputs, data_id=dict(data_id.required))
        butlerQC.put(outputs, outputRefs)

    def run(self, coaddSummaries: Sequence[Mapping[str, Any]], data_id: Mapping[str, Any] | None = None) -> Struct:
        coadds = sorted(coaddSummaries, key=lambda s: (int(s.get("patch") or 0), str(s.get("band") or "")))
        if not coadds:
            raise NoWorkFound("No coaddSummary in this tract.")
        data_id = dict(data_id or {"tract": coadds[0].get("tract")})
        depths = [c.get("coadd_depth") for c in coadds if c.get("coadd_depth") is not None]
        summary = {
            "skymap": data_id.get("skymap"),
            "tract": data_id.get("tract"),
            "n_patches": len({c.get("patch") for c in coadds}),
            "bands": sorted({str(c.get("band")) for c in coadds}),
            "n_coadds": len(coadds),
            "median_coadd_depth": _round(_median(depths)),
            "shallowest_coadd_depth": _round(min(depths) if depths else None),
            "max_visits_per_patch": max(int(c.get("n_visits") or 0) for c in coadds),
        }
        metrics = make_metric_bundle(
            {
                "tractCoverageMetrics": [
                    ("tract_n_patches", summary["n_patches"], ""),
                    ("tract_n_coadds", summary["n_coadds"], ""),
                ],
                "tractDepthMetrics": [
                    ("tract_median_depth", summary["median_coadd_depth"], "mag"),
                    ("tract_shallowest_depth", summary["shallowest_coadd_depth"], "mag"),
                ],
            },
            data_id,
            self.config.datasetIdentifier,
        )
        return Struct(tractSummary=summary, step4_metrics=metrics)
