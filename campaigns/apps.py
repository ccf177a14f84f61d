from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        from tagging.signals import mirror_changed

        from .coverage import on_mirror_changed

        # A mirror sync that adds or removes exposures: which exposures each group covers is recorded again.
        mirror_changed.connect(on_mirror_changed, dispatch_uid="campaigns.coverage.on_mirror_changed")

        from core.monitoring import register_collector

        from . import monitoring

        register_collector(monitoring.collect)
