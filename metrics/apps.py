from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "metrics"
    verbose_name = "QA metrics"

    def ready(self) -> None:
        # The selection recipe's `metric` term and metric strata: tagging (a lower layer) only has the registry.
        from . import selection

        selection.register()
