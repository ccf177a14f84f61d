"""Django settings. Every value that differs between machines comes from the environment.

See README.md, "Configuration", for the full list of variables.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from .env import database_from_url, env_bool, env_int, env_json, env_list, env_str

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
    "core",
    "campaigns",
    "tagging",
    "metrics",
]

TRUSTED_PROXY_AUTH = env_bool("CM_TRUSTED_PROXY_AUTH", False)
# Maps a group name sent by the proxy (X-Auth-Request-Groups) to a role: "staff" or "science".
TRUSTED_PROXY_GROUP_MAP: dict[str, str] = env_json("CM_PROXY_GROUP_MAP", {})

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    *(["core.proxy_auth.TrustedProxyUserMiddleware"] if TRUSTED_PROXY_AUTH else []),
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.middleware.LoginRequiredMiddleware",
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
STATIC_ROOT = VAR_DIR / "staticfiles"
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

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "core.api.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
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
    "ENUM_NAME_OVERRIDES": {
        "CampaignVisibilityEnum": "campaigns.choices.Visibility",
        "DataIdSetVisibilityEnum": "tagging.models.SetVisibility",
        "CampaignStatusEnum": "campaigns.choices.CampaignStatus",
        "GroupStatusEnum": "campaigns.choices.GroupStatus",
        "TagStatusEnum": "tagging.models.TagStatus",
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

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("CM_LOG_LEVEL", "INFO")},
}

# DataID sets: largest upload, and how many data IDs one user may store in all versions of their sets.
CM_DATAID_UPLOAD_MAX_BYTES = env_int("CM_DATAID_UPLOAD_MAX_BYTES", 512 * 1024 * 1024)
CM_DATAID_QUOTA = env_int("CM_DATAID_QUOTA", 20_000_000)

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
