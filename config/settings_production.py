"""Production settings: ``DJANGO_SETTINGS_MODULE=config.settings_production`` (gunicorn, workers, beat).

Everything of ``config.settings`` (still read from the environment), plus what a deployment behind a TLS-terminating
proxy needs, on by default: static files collected with hashed names and served by WhiteNoise, HTTPS redirects and
HSTS, secure cookies, JSON logs. ``manage.py check --deploy`` passes with no warning (a test holds it so).
The settings a deployment sets are listed in docs/deployment.md.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_int, env_str
from .settings import *  # noqa: F403
from .settings import LOGGING, MIDDLEWARE, logging_config

if DEBUG:  # noqa: F405
    raise ImproperlyConfigured("config.settings_production refuses DEBUG=1: use config.settings for development.")

# Static files: `manage.py collectstatic` writes them with content hashes into STATIC_ROOT; WhiteNoise serves them
# compressed, with far-future cache headers, from every web process (no separate file server needed).
MIDDLEWARE = [
    *MIDDLEWARE[: MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1],
    "whitenoise.middleware.WhiteNoiseMiddleware",
    *MIDDLEWARE[MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1 :],
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Behind the facility's proxy, which terminates TLS and says so in X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("CM_SSL_REDIRECT", True)
# Probes and scrapes come from inside the cluster over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("CM_HSTS_SECONDS", 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("CM_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("CM_HSTS_PRELOAD", True)
SESSION_COOKIE_SECURE = env_bool("CM_SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = env_bool("CM_SECURE_COOKIES", True)

# One JSON object per log line unless told otherwise.
CM_LOG_FORMAT = env_str("CM_LOG_FORMAT", "json")
CM_LOG_REQUESTS = env_bool("CM_LOG_REQUESTS", CM_LOG_FORMAT == "json")
LOGGING = logging_config(fmt=CM_LOG_FORMAT, level=LOGGING["root"]["level"])
