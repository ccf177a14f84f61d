"""Models of the metrics app: QA measurements tied to the data IDs they measure and to where they came from."""

from __future__ import annotations

from django.db import models


class MetricValue(models.Model):
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
    instrument = models.CharField(max_length=64, null=True, blank=True)
    exposure = models.BigIntegerField(null=True, blank=True)
    visit = models.BigIntegerField(null=True, blank=True)
    detector = models.IntegerField(null=True, blank=True)
    day_obs = models.IntegerField(null=True, blank=True)
    band = models.CharField(max_length=16, null=True, blank=True)
    physical_filter = models.CharField(max_length=64, null=True, blank=True)
    skymap = models.CharField(max_length=64, null=True, blank=True)
    tract = models.IntegerField(null=True, blank=True)
    patch = models.IntegerField(null=True, blank=True)
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

    class Meta:
        ordering = ["metric", "data_id_key"]
        constraints = [
            models.UniqueConstraint(
                fields=["source_key", "metric", "data_id_key"], name="metricvalue_unique_measurement"
            )
        ]
        indexes = [
            models.Index(fields=["campaign", "metric"], name="metricvalue_campaign_metric"),
            models.Index(fields=["exposure", "detector"], name="metricvalue_exposure"),
            models.Index(fields=["visit", "detector"], name="metricvalue_visit"),
            models.Index(fields=["metric", "day_obs"], name="metricvalue_metric_day"),
            # The newest value of a campaign in one index probe: part of the dashboards' cache key.
            models.Index(fields=["campaign", "id"], name="metricvalue_campaign_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.metric}={self.value} {self.unit} @ {self.data_id_key}"
