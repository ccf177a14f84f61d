from django.apps import AppConfig
from django.core import checks


class TaggingConfig(AppConfig):
    name = "tagging"
    verbose_name = "Data selection and tagging"

    def ready(self) -> None:
        # The selection recipe's own term kinds; higher layers add theirs in their ready() (metrics: metric).
        from .selection import kinds

        kinds.register()
        checks.register(check_repo_roots, checks.Tags.security)

        from core.health import register_readiness_check

        from .health import ButlerRepos

        register_readiness_check(ButlerRepos)


def check_repo_roots(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """A malformed CM_BUTLER_REPO_ROOTS stops `manage.py` and the servers at start, not at first use."""
    from django.core.exceptions import ImproperlyConfigured

    from .repo_locations import configured_roots

    try:
        configured_roots()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="tagging.E001")]
    return []
