from django.contrib import admin

from .models import ButlerRepo


@admin.register(ButlerRepo)
class ButlerRepoAdmin(admin.ModelAdmin):
    list_display = ("label", "config_uri", "default_instrument", "created")
    search_fields = ("label", "description")
