"""Models of the metrics app: QA measurements tied to the data IDs they measure and to where they came from."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from tagging.models import DataIdColumns


class MetricValueQuerySet(models.QuerySet):
    def restrict(self, user, action: str = "view") -> MetricValueQuerySet:
        """The one permission gate: values of campaigns ``user`` may view, and outside-source values.

        Only reads go through here; ingest is a staff-only service.
        """
        from campaigns.models import Campaign

        if action != "view":
            raise ValueError(f"Unknown action {action!r}")
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_superuser:
            return self
        return self.filter(Q(campaign__isnull=True) | Q(campaign__in=Campaign.objects.restrict(user, "view")))


class MetricValue(DataIdColumns):
    """One QA measurement (metric, value, unit) of one data ID, with its provenance.

    ``metric`` carries its package/action prefix (e.g. ``demo_pipeline.step1.psf_fwhm`` or
    ``analyzeMatchedVisitCore.stellarPhotometricRepeatability``). The data ID's primary keys sit in typed,
    indexed columns (as in tagging.DataIdRow) so dashboards and selections join them in SQL; ``day_obs`` and
    ``band`` are kept even when they are implied, so that dashboards filter without a join.
    ``source_key`` is the RUN collection for campaign outputs, else the outside source label: together with
    ``metric`` and ``data_id_key`` it makes ingest idempotent (the same measurement twice is stored once).
    """

    metric = models.CharField(max_length=200)
    value = models.FloatField(null=True, blank=True, help_text="null for NaN or infinity")
    unit = models.CharField(max_length=32, blank=True)
    data_id_key = models.CharField(
        max_length=200, help_text="canonical data ID, e.g. 'instrument=DemoCam,exposure=..,detector=4'"
    )
    repo = models.ForeignKey("tagging.ButlerRepo", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    campaign = models.ForeignKey(
        "campaigns.Campaign", on_delete=models.CASCADE, null=True, blank=True, related_name="metric_values"
    )
    step = models.ForeignKey("campaigns.Step", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    group = models.ForeignKey("campaigns.Group", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    run = models.CharField(max_length=512, blank=True, help_text="RUN collection that holds the measured dataset")
    dataset_type = models.CharField(max_length=200, blank=True)
    dataset_id = models.CharField(max_length=64, blank=True)
    source = models.CharField(max_length=200, blank=True, help_text="label of an outside source, when not a campaign")
    source_key = models.CharField(max_length=512, help_text="run, else source: the idempotency scope")
    timestamp = models.DateTimeField(null=True, blank=True, help_text="when it was measured, if known")
    ingested = models.DateTimeField(auto_now_add=True)

    objects = MetricValueQuerySet.as_manager()

    class Meta:
        ordering = ["metric", "data_id_key"]
        constraints = [
            models.UniqueConstraint(
                fields=["source_key", "metric", "data_id_key"], name="metricvalue_unique_measurement"
            )
        ]
        indexes = [
            # (campaign, metric) first for the dashboards and the loose index scans; detector for the explorer's
            # one-detector view, which would otherwise read every value of the (campaign, metric).
            models.Index(fields=["campaign", "metric", "detector"], name="metricvalue_campaign_detector"),
            models.Index(fields=["exposure", "detector"], name="metricvalue_exposure"),
            models.Index(fields=["visit", "detector"], name="metricvalue_visit"),
            models.Index(fields=["metric", "day_obs"], name="metricvalue_metric_day"),
            # The newest value of a campaign in one index probe: part of the dashboards' cache key.
            models.Index(fields=["campaign", "id"], name="metricvalue_campaign_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.metric}={self.value} {self.unit} @ {self.data_id_key}"


class CheckState(models.TextChoices):
    PENDING = "pending", "Waiting for its metrics"
    RUNNING = "running", "Being evaluated"
    DONE = "done", "Evaluated"
    FAILED = "failed", "Could not be evaluated"


class StepCheck(models.Model):
    """The evaluation of what a finished step decides downstream: its quality gates and the metric-conditioned
    inputs of the steps that read it.

    Written when the step succeeds (state ``pending``) and filled by the ``step_check_run`` task, which first
    ingests the metrics of the step's groups. Dependent steps wait while it is pending; a failed gate (or an
    evaluation that could not be done) holds them for a staff member's approval.
    """

    step = models.OneToOneField("campaigns.Step", on_delete=models.CASCADE, related_name="metric_check")
    state = models.CharField(max_length=10, choices=CheckState.choices, default=CheckState.PENDING)
    passed = models.BooleanField(null=True, blank=True, help_text="every gate passed (null: not evaluated)")
    error = models.TextField(blank=True)
    requested = models.DateTimeField(auto_now_add=True)
    evaluated = models.DateTimeField(null=True, blank=True)
    # Who is evaluating it: a check whose worker died is found by its host and pid and made pending again.
    claimed = models.DateTimeField(null=True, blank=True)
    worker_host = models.CharField(max_length=255, blank=True)
    worker_pid = models.IntegerField(null=True, blank=True)
    worker_pid_started = models.FloatField(null=True, blank=True, help_text="process start time (pid reuse)")

    class Meta:
        ordering = ["step"]

    def __str__(self) -> str:
        return f"check of {self.step_id}: {self.state} passed={self.passed}"


class GateResult(models.Model):
    """One quality gate of a step, evaluated over the step's metric values: measured statistic and verdict."""

    step = models.ForeignKey("campaigns.Step", on_delete=models.CASCADE, related_name="gate_results")
    position = models.PositiveIntegerField()
    gate = models.JSONField(help_text="the gate as defined: metric, statistic, op, threshold")
    text = models.CharField(max_length=300, help_text="the gate in words, e.g. 'psf_fwhm median < 1.1'")
    metric = models.CharField(max_length=200, blank=True, help_text="the stored metric name(s) it matched")
    count = models.PositiveIntegerField(default=0, help_text="values the statistic was computed over")
    measured = models.FloatField(null=True, blank=True)
    passed = models.BooleanField(default=False)
    evaluated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["step", "position"]
        constraints = [models.UniqueConstraint(fields=["step", "position"], name="gateresult_unique_position")]

    def __str__(self) -> str:
        return f"{self.text}: {self.measured} {'pass' if self.passed else 'FAIL'}"


class StepInputFreeze(models.Model):
    """A step's metric-conditioned input, evaluated when its upstream step finished and frozen as a DataID set
    whose data-ID table constrains the step's groups."""

    step = models.OneToOneField("campaigns.Step", on_delete=models.CASCADE, related_name="input_freeze")
    condition = models.JSONField(help_text="the step's metric_input as defined")
    text = models.CharField(max_length=300)
    version = models.ForeignKey(
        "tagging.DataIdSetVersion", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    selected = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    table_path = models.CharField(max_length=1024, blank=True)
    frozen = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["step"]

    def __str__(self) -> str:
        return f"{self.text}: {self.selected} selected"


# --- rollups of the metric values, for the dashboards ----------------------------------------------------------
#
# Maintained by metrics/rollups.py: the rows of one (campaign, metric) are recomputed from its values in SQL
# whenever an ingest touches it (and lazily, on a dashboard read, if values arrived some other way). The keys
# carry every column the explorer filters on except detector and value (those filters read the values).


class MetricRollupState(models.Model):
    """Whether the rollups of one (campaign, metric) are current, and the fine histogram grid they use."""

    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.CASCADE, related_name="+")
    metric = models.CharField(max_length=200)
    dirty = models.BooleanField(default=True, help_text="values changed since the rollups were computed")
    newest = models.BigIntegerField(default=0, help_text="the campaign's newest value id when they were computed")
    grid = models.IntegerField(null=True, blank=True, help_text="histogram bins are 10**grid wide (null: no value)")
    refreshed = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "metric"], name="metricrollupstate_unique")]

    def __str__(self) -> str:
        return f"rollups of {self.metric} in {self.campaign_id}{' (dirty)' if self.dirty else ''}"


class MetricExposureRollup(models.Model):
    """Count, sum, min, max of one metric's values per exposure (or visit), step, band and night."""

    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.CASCADE, related_name="+")
    metric = models.CharField(max_length=200)
    instrument = models.CharField(max_length=64, null=True, blank=True)
    exposure = models.BigIntegerField(null=True, blank=True, help_text="exposure, else visit")
    step = models.ForeignKey("campaigns.Step", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    band = models.CharField(max_length=16, null=True, blank=True)
    day_obs = models.IntegerField(null=True, blank=True)
    rows = models.BigIntegerField(help_text="values, NaN included")
    n = models.BigIntegerField(help_text="finite values")
    total = models.FloatField(null=True, blank=True)
    low = models.FloatField(null=True, blank=True)
    high = models.FloatField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["campaign", "metric"], name="metricexposurerollup_key")]

    def __str__(self) -> str:
        return f"{self.metric} of exposure {self.exposure}: {self.n} values"


class MetricDetectorRollup(models.Model):
    """Count and sum of one metric's values per detector, step, band and night (the focal plane)."""

    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.CASCADE, related_name="+")
    metric = models.CharField(max_length=200)
    instrument = models.CharField(max_length=64, null=True, blank=True)
    detector = models.IntegerField(null=True, blank=True)
    step = models.ForeignKey("campaigns.Step", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    band = models.CharField(max_length=16, null=True, blank=True)
    day_obs = models.IntegerField(null=True, blank=True)
    n = models.BigIntegerField()
    total = models.FloatField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["campaign", "metric"], name="metricdetectorrollup_key")]

    def __str__(self) -> str:
        return f"{self.metric} of detector {self.detector}: {self.n} values"


class MetricHistogramRollup(models.Model):
    """How many finite values fall in each fine bin ``[bin, bin + 1) * 10**grid`` per step, band and night."""

    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.CASCADE, related_name="+")
    metric = models.CharField(max_length=200)
    step = models.ForeignKey("campaigns.Step", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    band = models.CharField(max_length=16, null=True, blank=True)
    day_obs = models.IntegerField(null=True, blank=True)
    bin = models.BigIntegerField()
    n = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["campaign", "metric"], name="metrichistogramrollup_key")]

    def __str__(self) -> str:
        return f"{self.metric} in bin {self.bin}: {self.n} values"


class MetricPairIndex(models.Model):
    """One (campaign, metric)'s values as columns of packed numbers, sorted by a 64-bit hash of the data ID,
    so that two campaigns are paired on the data ID by merging two sorted arrays (``metrics.pairs``) instead
    of joining two million-row sides in SQL. Rebuilt with the rollups; each column is little-endian,
    one entry per value, in the same order."""

    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.CASCADE, related_name="+")
    metric = models.CharField(max_length=200)
    rows = models.BigIntegerField()
    probe = models.BigIntegerField(help_text="the hash of a fixed text when built: a changed hash function is seen")
    keys = models.BinaryField(help_text="int64: hashtextextended(data_id_key, 0), ascending")
    ids = models.BinaryField(help_text="int64: the metric value's id")
    values = models.BinaryField(help_text="float64: the value, NaN for null")
    day_obs = models.BinaryField(help_text="int32: day_obs, -2**31 for none")
    detectors = models.BinaryField(help_text="int32: detector, -2**31 for none")
    steps = models.BinaryField(help_text="int64: step id, -1 for none")
    bands = models.BinaryField(help_text="int16: 1 + index in band_names, 0 for none")
    band_names = models.JSONField(default=list)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "metric"], name="metricpairindex_unique")]

    def __str__(self) -> str:
        return f"pair index of {self.metric} in {self.campaign_id}: {self.rows} values"
