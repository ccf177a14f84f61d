from django.contrib import admin

from .models import BadDataRecord, ButlerRepo, ExposureFlag


@admin.register(ButlerRepo)
class ButlerRepoAdmin(admin.ModelAdmin):
    list_display = ("label", "config_uri", "default_instrument", "created")
    search_fields = ("label", "description")


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
