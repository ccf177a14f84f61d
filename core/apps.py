from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from . import auth, converters, sqlite_functions  # noqa: F401  (log-in failure counting; SQLite's missing SQL functions)

        converters.register()  # <id:...> in the pages' URLs
