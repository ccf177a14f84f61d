"""Administrators see every API token (never its key in full) with when it expires, and revoke one by
deleting it (its owner's scripts are refused from the next request on)."""

from __future__ import annotations

from django.contrib import admin
from rest_framework.authtoken.admin import TokenAdmin as DrfTokenAdmin
from rest_framework.authtoken.models import TokenProxy

from .tokens import token_expired, token_expires

admin.site.unregister(TokenProxy)


@admin.register(TokenProxy)
class TokenAdmin(DrfTokenAdmin):
    list_display = ("user", "key_start", "created", "expires")
    readonly_fields = ("user",)  # a token is created by its owner and revoked (deleted) here, not moved

    def has_add_permission(self, request) -> bool:
        return False  # its owner creates it (token page, `cm login`), so that only they ever see the key

    @admin.display(description="key")
    def key_start(self, token: TokenProxy) -> str:
        return token.key[:6] + "…"

    @admin.display(description="expires")
    def expires(self, token: TokenProxy) -> str:
        when = token_expires(token)
        if when is None:
            return "never (CM_TOKEN_MAX_AGE is off)"
        return ("expired " if token_expired(token) else "") + when.strftime("%Y-%m-%d %H:%M UTC")
