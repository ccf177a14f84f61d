"""API tokens: they expire after ``CM_TOKEN_MAX_AGE`` (off by default) and their owner (token page,
``DELETE /api/v1/auth/token/``) or an administrator (admin) revokes them by deleting them.

Kept apart from ``core.auth`` (views): DRF imports the authentication class while it loads its views.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token


def token_expires(token: Token) -> datetime | None:
    """When ``token`` stops working (None: tokens do not expire here)."""
    max_age = settings.CM_TOKEN_MAX_AGE
    return token.created + timedelta(seconds=max_age) if max_age else None


def token_expired(token: Token) -> bool:
    expires = token_expires(token)
    return expires is not None and expires <= timezone.now()


class ExpiringTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <key>``, refused once the token is older than ``CM_TOKEN_MAX_AGE``."""

    def authenticate_credentials(self, key: str):
        user, token = super().authenticate_credentials(key)
        if token_expired(token):
            raise exceptions.AuthenticationFailed(
                "This token has expired. Create a new one on your token page, or with `cm login`."
            )
        return user, token


def token_for(user) -> Token:
    """The user's token, a new one if they had none or theirs has expired."""
    token = Token.objects.filter(user=user).first()
    if token is not None and token_expired(token):
        token.delete()
        token = None
    return token or Token.objects.create(user=user)


def token_revoke(*, user) -> bool:
    """Delete the user's token; whether there was one."""
    deleted, _ = Token.objects.filter(user=user).delete()
    return bool(deleted)


__all__ = ["ExpiringTokenAuthentication", "token_expired", "token_expires", "token_for", "token_revoke"]
