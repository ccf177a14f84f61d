from django.contrib import admin

from .models import BadDataRecord, ButlerRepo, ExposureFlag
from .repo_locations import configured_roots


@admin.register(ButlerRepo)
class ButlerRepoAdmin(admin.ModelAdmin):
    list_display = ("label", "config_uri", "default_instrument", "created")
    search_fields = ("label", "description")

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        roots = ", ".join(str(r) for r in configured_roots()) or "none: set CM_BUTLER_REPO_ROOTS"
        form.base_fields[
            "config_uri"
        ].help_text = f"Path or URI of the repository root or its butler.yaml, under an allowed root ({roots})."
        return form


@admin.register(ExposureFlag)
class ExposureFlagAdmin(admin.ModelAdmin):
    """Read-only: flags change only through their services (append-only edits)."""

    list_display = ("obs_id", "exposure_flag", "is_valid", "user_id", "date_added")
    list_filter = ("exposure_flag", "is_valid", "instrument")
    search_fields = ("obs_id", "message_text", "user_id")

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(BadDataRecord)
class BadDataRecordAdmin(admin.ModelAdmin):
    list_display = ("summary", "status", "key", "repo", "source", "updated")
    list_filter = ("status", "source", "repo")
    search_fields = ("summary", "key", "explanation", "dataset_type")
    readonly_fields = ("quantum_error",)
