"""Django settings. Every value that differs between machines comes from the environment.

See README.md, "Configuration", for the full list of variables.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from core.observability import logging_config

from .env import database_from_url, env_bool, env_duration, env_int, env_json, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("CM_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set in the environment when DEBUG is off.")
    # Development only: a random key kept under var/ so sessions survive restarts.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / "dev-secret-key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "django_celery_beat",
    "health_check",
    "django_prometheus",
    "core",
    "campaigns",
    "tagging",
    "metrics",
]

TRUSTED_PROXY_AUTH = env_bool("CM_TRUSTED_PROXY_AUTH", False)
# Maps a group name sent by the proxy (X-Auth-Request-Groups) to a role: "staff" or "science".
TRUSTED_PROXY_GROUP_MAP: dict[str, str] = env_json("CM_PROXY_GROUP_MAP", {})

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "core.observability.RequestContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "core.middleware.RejectNulCharacters",  # a NUL in a query string is a 400, not a database error
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    *(["core.proxy_auth.TrustedProxyUserMiddleware"] if TRUSTED_PROXY_AUTH else []),
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.middleware.LoginRequiredMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.context_processors.roles",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
DATABASES = {"default": database_from_url(DATABASE_URL, BASE_DIR)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
    *(["core.proxy_auth.TrustedProxyUserBackend"] if TRUSTED_PROXY_AUTH else []),
]
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user object; login is required everywhere
GUARDIAN_RAISE_403 = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "campaigns:list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
]
# Where `collectstatic` writes (the image collects at build time, outside the writable CM_VAR_DIR).
STATIC_ROOT = Path(env_str("CM_STATIC_ROOT", str(VAR_DIR / "staticfiles")))
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media-not-served/"  # attachments are only served through a permission-checked view

# Uploads: attachments above this size are refused (bytes). Default 20 MB.
CM_ATTACHMENT_MAX_BYTES = env_int("CM_ATTACHMENT_MAX_BYTES", 20 * 1024 * 1024)
CM_YAML_MAX_BYTES = env_int("CM_YAML_MAX_BYTES", 1024 * 1024)
# Files bigger than this go to a temporary file instead of memory while uploading.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("CM_REQUEST_MAX_BYTES", 5 * 1024 * 1024)

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("CM_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CM_SECURE_COOKIES", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Caches. "default" holds computed dashboards; "auth" counts failed log-ins (core.auth), so it must be
# shared by every web process: Redis when CM_CACHE_URL is set (several hosts), else files under var/ (the
# processes of one host, as `make run` and a single gunicorn host have).
CM_CACHE_URL = env_str("CM_CACHE_URL")
CACHES: dict[str, dict[str, Any]]
if CM_CACHE_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CM_CACHE_URL},
        "auth": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CM_CACHE_URL,
            "KEY_PREFIX": "cm-auth",
        },
    }
else:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "auth": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "auth-cache"),
            # Django culls a third of the entries past MAX_ENTRIES (300 by default): keep the counts of a
            # password-spraying burst; each failure lists the directory, so not unbounded either.
            "OPTIONS": {"MAX_ENTRIES": 10_000},
        },
    }

# Log-in limits (login page, admin log-in, POST /api/v1/auth/token/): after this many failures within the window
# for one username, or from one client address, further attempts are answered 429 with Retry-After until the
# window (counted from the first failure) ends.
CM_AUTH_MAX_FAILURES_PER_USER = env_int("CM_AUTH_MAX_FAILURES_PER_USER", 5)
CM_AUTH_MAX_FAILURES_PER_ADDRESS = env_int("CM_AUTH_MAX_FAILURES_PER_ADDRESS", 20)
CM_AUTH_FAILURE_WINDOW_SECONDS = env_int("CM_AUTH_FAILURE_WINDOW_SECONDS", 900)
# How many proxies in front of the app append to X-Forwarded-For (0: the client is REMOTE_ADDR). The client
# address is the one that many places from the right; a client cannot choose it by sending the header itself.
CM_NUM_PROXIES = env_int("CM_NUM_PROXIES", 0)
# API tokens older than this are refused (seconds; CM_TOKEN_MAX_AGE accepts 3600, 12h, 30d, 2w or off).
CM_TOKEN_MAX_AGE = env_duration("CM_TOKEN_MAX_AGE", None)

REST_FRAMEWORK = {
    # Bounded: at most CM_REQUEST_MAX_BYTES, JSON scanned against the CM_INPUT_* limits (core.parsers).
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONParser", "core.parsers.FormParser", "core.parsers.MultiPartParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "core.tokens.ExpiringTokenAuthentication",
    ],
    # IsAuthenticated first (401 before anything else); then a query parameter the schema does not document for
    # the operation is a 400 naming it (core.permissions.KnownQueryParameters; see docs/api.md).
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "core.permissions.KnownQueryParameters",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "core.api.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "core.schema.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Campaign manager API",
    "DESCRIPTION": "Campaigns, steps, groups, history and attachments for LSST-style processing.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],  # login required everywhere
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # <id:...> in page URLs and the API's ids (core.converters): a database id, a signed 64-bit integer.
    "PATH_CONVERTER_OVERRIDES": {"id": {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**63 - 1}},
    "ENUM_NAME_OVERRIDES": {
        "CampaignVisibilityEnum": "campaigns.choices.Visibility",
        "DataIdSetVisibilityEnum": "tagging.models.SetVisibility",
        "CampaignStatusEnum": "campaigns.choices.CampaignStatus",
        "GroupStatusEnum": "campaigns.choices.GroupStatus",
        "TagStatusEnum": "tagging.models.TagStatus",
        "StepStatusEnum": "campaigns.choices.StepStatus",
        "BadDataStatusEnum": "tagging.models.BadDataStatus",
    },
}

# Celery. Default: a broker that needs no server (kombu's SQLAlchemy transport on SQLite).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", f"sqla+sqlite:///{VAR_DIR / 'celery-broker.sqlite3'}")
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", "") or None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Beat reads its schedule from the database (django-celery-beat): the static entries of
# config/celery.py are synced into it at start, recurring campaigns add their own PeriodicTasks.
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
DJANGO_CELERY_BEAT_TZ_AWARE = USE_TZ

# E-mail (notifications). Development prints messages to the console unless EMAIL_BACKEND says otherwise.
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30)
DEFAULT_FROM_EMAIL = env_str("CM_EMAIL_FROM", "campaign-manager@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Notifications: absolute links in messages start with this (e.g. https://cm.example.org); web hook timeout.
CM_BASE_URL = env_str("CM_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
CM_WEBHOOK_TIMEOUT_SECONDS = env_int("CM_WEBHOOK_TIMEOUT_SECONDS", 10)

# Logs: "plain" lines for a developer, or "json" (one object per line with request id, user, campaign, group and
# task ids: core.observability) for a log collector. CM_LOG_REQUESTS adds one line per request.
CM_LOG_FORMAT = env_str("CM_LOG_FORMAT", "plain")
CM_LOG_REQUESTS = env_bool("CM_LOG_REQUESTS", CM_LOG_FORMAT == "json")
LOGGING = logging_config(fmt=CM_LOG_FORMAT, level=env_str("CM_LOG_LEVEL", "INFO"))

# Operations: /metrics asks for this bearer token when set; /readyz reuses a Butler repo's answer this long.
CM_METRICS_TOKEN = env_str("CM_METRICS_TOKEN", "")
CM_READYZ_REPO_CACHE_SECONDS = env_int("CM_READYZ_REPO_CACHE_SECONDS", 60)

# DataID sets: largest upload, and how many data IDs one user may store in all versions of their sets.
CM_DATAID_UPLOAD_MAX_BYTES = env_int("CM_DATAID_UPLOAD_MAX_BYTES", 512 * 1024 * 1024)
CM_DATAID_QUOTA = env_int("CM_DATAID_QUOTA", 20_000_000)

# Limits of every reader of user input (core.limits), checked while it streams; see README "Configuration".
CM_INPUT_MAX_DEPTH = env_int("CM_INPUT_MAX_DEPTH", 32)  # nesting of JSON, YAML, XML
CM_INPUT_MAX_STRING_BYTES = env_int("CM_INPUT_MAX_STRING_BYTES", 64 * 1024)  # one string, cell or scalar
CM_INPUT_MAX_ELEMENTS = env_int("CM_INPUT_MAX_ELEMENTS", 1_000_000)  # values and keys of a document read whole
CM_INPUT_MAX_ROW_ELEMENTS = env_int("CM_INPUT_MAX_ROW_ELEMENTS", 10_000)  # ... of one row of a streamed upload
CM_INPUT_MAX_ROW_BYTES = env_int("CM_INPUT_MAX_ROW_BYTES", 1024 * 1024)  # one row, line or table header
CM_UPLOAD_MAX_ROWS = env_int("CM_UPLOAD_MAX_ROWS", 1_000_000)  # rows of one tag-table upload
CM_IMPORT_MAX_BYTES = env_int("CM_IMPORT_MAX_BYTES", 64 * 1024 * 1024)  # an exposure-log export (read whole)
# Butler repos may be registered only under these roots (tagging.repo_locations): comma-separated absolute
# paths (or file:///path), s3://bucket/prefix, gs://bucket/prefix, https://host/prefix. Unset: the project's
# var/butler in DEBUG (where `make run` builds the demo repo), nothing otherwise; set it empty to allow none.
CM_BUTLER_REPO_ROOTS = env_list("CM_BUTLER_REPO_ROOTS", [str(VAR_DIR / "butler")] if DEBUG else [])

# Executor (campaigns.execution): BPS submit directories (one fresh directory per attempt),
# where relative pipeline paths are found, and reconciliation of lost workers.
CM_SUBMIT_ROOT = Path(env_str("CM_SUBMIT_ROOT", str(VAR_DIR / "submit")))
CM_PIPELINE_ROOT = Path(env_str("CM_PIPELINE_ROOT", str(BASE_DIR)))
# A submission owned by a worker on another host is presumed alive this long after it started.
CM_RECONCILE_REMOTE_STALE_SECONDS = env_int("CM_RECONCILE_REMOTE_STALE_SECONDS", 12 * 3600)
# A ready group of a running campaign not picked up for this long is sent again (harmless: claims are atomic).
CM_RECONCILE_READY_AFTER_SECONDS = env_int("CM_RECONCILE_READY_AFTER_SECONDS", 600)
# Parsl progress counts are refreshed by poll_running_groups at most this often.
CM_PROGRESS_INTERVAL_SECONDS = env_int("CM_PROGRESS_INTERVAL_SECONDS", 20)
# The launch plan estimates quanta for at most this many groups (one registry query per task and group).
CM_PLAN_MAX_COUNTED_GROUPS = env_int("CM_PLAN_MAX_COUNTED_GROUPS", 200)
# The check that a step's groups cover its data exactly once (campaigns.execution.split_check): at most this
# many groups are compared data ID by data ID, holding at most this many data IDs; beyond, the plan says so.
CM_SPLIT_CHECK_MAX_GROUPS = env_int("CM_SPLIT_CHECK_MAX_GROUPS", 200)
CM_SPLIT_CHECK_MAX_ROWS = env_int("CM_SPLIT_CHECK_MAX_ROWS", 200_000)
# A group's data-ID table larger than this is not joined in the plan's estimate (which is then an upper bound).
CM_PLAN_MAX_TABLE_ROWS = env_int("CM_PLAN_MAX_TABLE_ROWS", 100_000)
