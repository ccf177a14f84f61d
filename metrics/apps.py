from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "metrics"
    verbose_name = "QA metrics"

    def ready(self) -> None:
        # The selection recipe's `metric` term and metric strata: tagging (a lower layer) only has the registry.
        from campaigns.signals import group_outputs_final

        from . import selection, services

        selection.register()
        # A group that succeeded, or was accepted as it is: its metric bundles are ingested (after the commit).
        group_outputs_final.connect(services.group_outputs_ingest, dispatch_uid="metrics.group_outputs_ingest")
