"""Log-in limits and the token endpoint: failed log-ins are counted per username and per client address
(tokens themselves, their expiry and revocation: ``core.tokens``).

Failures are counted from Django's ``user_login_failed`` signal, so every password check counts (the
login page, the admin's log-in and ``POST /api/v1/auth/token/``); the three views ask ``retry_after``
before checking a password, and answer 429 with ``Retry-After`` while a limit is reached, without looking
at the password (a locked account gives no hint whether a guess was right). Counters live in the
``auth`` cache, shared by the web processes (Redis with ``CM_CACHE_URL``).
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import caches
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from .tokens import token_expires, token_for, token_revoke

# --- failed log-ins ------------------------------------------------------------------------------


def client_address(request: Any) -> str:
    """The client's address: REMOTE_ADDR, or with ``CM_NUM_PROXIES`` proxies in front, the address the
    outermost of them saw (counted from the right of X-Forwarded-For, where a client cannot write)."""
    meta = request.META
    hops = settings.CM_NUM_PROXIES
    if hops > 0:
        forwarded = [part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if forwarded:
            return forwarded[-min(hops, len(forwarded))]
    return meta.get("REMOTE_ADDR") or "unknown"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:32]


def _user_key(username: str) -> str:
    return f"login-fail:user:{_digest(username.strip().lower())}"


def _keys(request: Any, username: str | None) -> list[tuple[str, int]]:
    keys = [(f"login-fail:addr:{_digest(client_address(request))}", settings.CM_AUTH_MAX_FAILURES_PER_ADDRESS)]
    if username:
        keys.append((_user_key(username), settings.CM_AUTH_MAX_FAILURES_PER_USER))
    return keys


def _cache():
    return caches["auth"]


def record_failure(request: Any, username: str | None) -> None:
    """Count one failed log-in for the username and the client address (a window starts at the first)."""
    cache, window = _cache(), settings.CM_AUTH_FAILURE_WINDOW_SECONDS
    for key, _ in _keys(request, username):
        cache.add(f"{key}:until", time.time() + window, timeout=window)
        if cache.add(key, 1, timeout=window):
            continue
        try:
            cache.incr(key)
        except ValueError:  # expired between the two calls: this failure starts a new window
            cache.set(key, 1, timeout=window)


def retry_after(request: Any, username: str | None) -> int | None:
    """Seconds until this username or address may try again, or None if neither limit is reached."""
    cache, now, wait = _cache(), time.time(), 0
    for key, limit in _keys(request, username):
        count = cache.get(key) or 0
        if count >= limit:
            until = cache.get(f"{key}:until") or now + 1
            wait = max(wait, math.ceil(until - now), 1)
    return wait or None


def forget_user_failures(username: str) -> None:
    """A successful log-in clears its username's count (not its address's: one account of one's own
    must not buy more guesses at another)."""
    key = _user_key(username)
    _cache().delete_many([key, f"{key}:until"])


@receiver(user_login_failed)
def _count_failed_login(sender, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs) -> None:
    if request is not None:
        record_failure(request, credentials.get("username"))


@receiver(user_logged_in)
def _clear_on_login(sender, request, user, **kwargs) -> None:
    forget_user_failures(user.get_username())


def _wait_text(seconds: int) -> str:
    minutes = math.ceil(seconds / 60)
    return f"{seconds} seconds" if seconds < 120 else f"{minutes} minutes"


class ThrottledLoginView(auth_views.LoginView):
    """The login page; while a limit is reached a log-in is refused with 429 before the password is read."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        wait = retry_after(request, request.POST.get("username"))
        if wait is not None:
            # An unbound form: binding the posted one would check the password after all.
            form = self.get_form_class()(request, initial={"username": request.POST.get("username", "")})
            return throttled_page(request, wait, str(self.template_name), self.get_context_data(form=form))
        return super().post(request, *args, **kwargs)


def throttled_page(request: HttpRequest, wait: int, template: str, context: dict[str, Any]) -> HttpResponse:
    context = {**context, "throttled": f"Too many failed log-ins. Try again in {_wait_text(wait)}."}
    response = TemplateResponse(request, template, context, status=429)
    response["Retry-After"] = str(wait)
    return response


def throttle_admin_login(login_view):
    """The admin's log-in view with the same limit (it checks passwords too)."""

    def view(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if request.method == "POST":
            wait = retry_after(request, request.POST.get("username"))
            if wait is not None:
                response = HttpResponse(
                    f"Too many failed log-ins. Try again in {_wait_text(wait)}.\n",
                    status=429,
                    content_type="text/plain; charset=utf-8",
                )
                response["Retry-After"] = str(wait)
                return response
        return login_view(request, extra_context)

    return view


# --- the token endpoint --------------------------------------------------------------------------


_TOKEN_OUT = inline_serializer(
    "AuthToken", {"token": serializers.CharField(), "expires": serializers.DateTimeField(allow_null=True)}
)


class TokenView(ObtainAuthToken):
    """``POST`` username and password for your token (429 with Retry-After after repeated failures);
    ``DELETE`` (authenticated) revokes the token you have."""

    def get_authenticators(self):
        # POST is the log-in itself: no credentials yet (and no CSRF for scripts). DELETE needs them.
        if self._method() == "DELETE":
            return [auth() for auth in api_settings.DEFAULT_AUTHENTICATION_CLASSES]
        return []

    def get_permissions(self):
        return [IsAuthenticated()] if self._method() == "DELETE" else []

    def _method(self) -> str:
        return getattr(getattr(self, "request", None), "method", None) or ""  # no request: schema generation

    @extend_schema(
        request=inline_serializer(
            "AuthTokenRequest", {"username": serializers.CharField(), "password": serializers.CharField()}
        ),
        responses={
            200: _TOKEN_OUT,
            400: OpenApiResponse(description="wrong credentials"),
            429: OpenApiResponse(description="too many failed log-ins: Retry-After says when to try again"),
        },
        auth=[],
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        username = request.data.get("username") if hasattr(request.data, "get") else None
        wait = retry_after(request, username if isinstance(username, str) else None)
        if wait is not None:
            raise exceptions.Throttled(wait=wait, detail=f"Too many failed log-ins. Try again in {_wait_text(wait)}.")
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = serializer.validated_data["user"]
        forget_user_failures(user.get_username())
        token = token_for(user)
        return Response({"token": token.key, "expires": token_expires(token)})

    @extend_schema(request=None, responses={204: None, 403: OpenApiResponse(description="not authenticated")})
    def delete(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        token_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


__all__ = [
    "ThrottledLoginView",
    "TokenView",
    "client_address",
    "record_failure",
    "retry_after",
    "throttle_admin_login",
]
