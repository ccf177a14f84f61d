from django.apps import AppConfig


class TaggingConfig(AppConfig):
    name = "tagging"
    verbose_name = "Data selection and tagging"

    def ready(self) -> None:
        # The selection recipe's own term kinds; higher layers add theirs in their ready() (metrics: metric).
        from .selection import kinds

        kinds.register()
