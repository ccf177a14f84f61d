"""Login from a trusted authenticating proxy (Rubin's Gafaelfawr).

Off by default (``CM_TRUSTED_PROXY_AUTH``). When on, the proxy sets
``X-Auth-Request-User`` (and optionally ``X-Auth-Request-Groups``, comma
separated); ``CM_PROXY_GROUP_MAP`` maps proxy groups to the roles ``staff`` and
``science``. Only enable it behind a proxy that strips these headers from
client requests.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.backends import RemoteUserBackend
from django.contrib.auth.middleware import RemoteUserMiddleware

from .roles import STAFF_GROUP, set_role


class TrustedProxyUserMiddleware(RemoteUserMiddleware):
    header = "HTTP_X_AUTH_REQUEST_USER"
    force_logout_if_no_header = True


class TrustedProxyUserBackend(RemoteUserBackend):
    create_unknown_user = True

    def configure_user(self, request, user, created=True):
        self.sync_role(request, user)
        return user

    def authenticate(self, request, remote_user):
        user = super().authenticate(request, remote_user)
        if user is not None and request is not None:
            self.sync_role(request, user)
        return user

    @staticmethod
    def sync_role(request, user) -> None:
        raw = request.META.get("HTTP_X_AUTH_REQUEST_GROUPS", "")
        proxy_groups = {g.strip() for g in raw.split(",") if g.strip()}
        roles = {settings.TRUSTED_PROXY_GROUP_MAP[g] for g in proxy_groups if g in settings.TRUSTED_PROXY_GROUP_MAP}
        if not roles:
            return
        set_role(user, STAFF_GROUP if STAFF_GROUP in roles else "science")
