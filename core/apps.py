from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from . import converters, sqlite_functions  # noqa: F401  (registers SQLite's missing SQL functions)

        converters.register()  # <id:...> in the pages' URLs
