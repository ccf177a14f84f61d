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

from .roles import SCIENCE_GROUP, STAFF_GROUP, clear_role, role_group_of, set_role


class TrustedProxyUserMiddleware(RemoteUserMiddleware):
    header = "HTTP_X_AUTH_REQUEST_USER"
    force_logout_if_no_header = True

    def process_request(self, request):
        super().process_request(request)
        # Django only authenticates when the user changes; the proxy's groups can change during a session.
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and "HTTP_X_AUTH_REQUEST_GROUPS" in request.META:
            TrustedProxyUserBackend.sync_role(request, user)


class TrustedProxyUserBackend(RemoteUserBackend):
    create_unknown_user = True

    def configure_user(self, request, user, created=True):
        # Django calls this before refusing inactive users: the role is synced in authenticate(), on success only.
        return user

    def authenticate(self, request, remote_user):
        user = super().authenticate(request, remote_user)
        if user is not None and request is not None:
            self.sync_role(request, user)
        return user

    @staticmethod
    def sync_role(request, user) -> None:
        """Make the user's role what the proxy's groups say. With the groups header present but no mapped
        group, the user loses both roles (someone removed from the staff group stops being staff); without
        the header the role is left as it is."""
        if "HTTP_X_AUTH_REQUEST_GROUPS" not in request.META:
            return
        raw = request.META["HTTP_X_AUTH_REQUEST_GROUPS"]
        proxy_groups = {g.strip() for g in raw.split(",") if g.strip()}
        roles = {settings.TRUSTED_PROXY_GROUP_MAP[g] for g in proxy_groups if g in settings.TRUSTED_PROXY_GROUP_MAP}
        wanted = STAFF_GROUP if STAFF_GROUP in roles else (SCIENCE_GROUP if roles else None)
        if wanted == role_group_of(user):
            return
        if wanted is None:
            clear_role(user)
        else:
            set_role(user, wanted)
