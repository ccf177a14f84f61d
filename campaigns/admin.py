from django.contrib import admin
from guardian.admin import GuardedModelAdmin

from .models import (
    Attachment,
    Campaign,
    Group,
    GroupCoverage,
    HistoryEntry,
    Notification,
    RecurringCampaign,
    Step,
    WorkerHeartbeat,
)


class StepInline(admin.TabularInline):
    model = Step
    extra = 0


@admin.register(Campaign)
class CampaignAdmin(GuardedModelAdmin):
    list_display = ("name", "campaign_type", "status", "owner", "visibility", "archived", "updated")
    list_filter = ("campaign_type", "status", "visibility", "archived")
    search_fields = ("name", "reason")
    inlines = [StepInline]
    readonly_fields = ("version", "created", "updated")


admin.site.register(Group)
admin.site.register(Attachment)
admin.site.register(HistoryEntry)
admin.site.register(WorkerHeartbeat)
admin.site.register(Notification)
admin.site.register(RecurringCampaign)


@admin.register(GroupCoverage)
class GroupCoverageAdmin(admin.ModelAdmin):
    """Read-only: written by campaigns.coverage (a group's rows are replaced when its selection changes)."""

    list_display = ("group", "state", "exposures", "recorded")
    list_filter = ("state",)
    readonly_fields = ("group", "where", "data_id_table", "state", "reason", "exposures", "recorded")

    def has_add_permission(self, request) -> bool:
        return False
