from django.apps import AppConfig


class TaggingConfig(AppConfig):
    name = "tagging"
    verbose_name = "Data selection and tagging"

    def ready(self) -> None:
        from core.health import register_readiness_check

        from .health import ButlerRepos

        register_readiness_check(ButlerRepos)
