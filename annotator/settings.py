"""Settings for the voice-clip annotator, read from the environment.

Defaults are for the embedded demo (SQLite, DEBUG off, demo keys). Production is
``ANNOTATOR_ENV=production``: every secret must then come from the environment and
the secure cookie / HSTS settings switch on.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

# One BLAS thread per process: the disguise DSP works on one clip at a time inside a worker
# per core, and BLAS threads spinning beside it cost CPU without making a clip faster
# (measured: the 'target' preset fell from >50x to 37x real time per core of CPU with them).
# Set before numpy loads, which the app's modules import after the settings.
for _blas_threads in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_blas_threads, "1")


def env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return default if value in (None, "") else float(value)


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


PRODUCTION = env("ANNOTATOR_ENV", "demo") == "production"


def secret(name: str, demo_default: str) -> str:
    """Read a secret; the demo default is refused in production."""
    value = env(name)
    if value:
        return value
    if PRODUCTION:
        raise ImproperlyConfigured(f"{name} must be set in production")
    return demo_default


SECRET_KEY = secret("DJANGO_SECRET_KEY", "demo-only-secret-key-0f4c2d8e6b1a4f7c9e3d5b2a8c6e1f0d4b7a9c2e")
# Key for the subject pseudonym (HMAC-SHA256 of the account id). It lives only in
# the environment so that a database dump alone cannot link a clip to an account.
PSEUDONYM_KEY = secret("PSEUDONYM_KEY", "demo-only-pseudonym-key-7d1e9b3c5a2f4e6d8c0b1a3f5e7d9c2b")
# After `manage.py rotate_pseudonym_key` the variable holds every layer, oldest first,
# comma-separated: stored pseudonyms are HMAC(new, HMAC(old, account id)), so an old key
# that leaked on its own links nothing.
PSEUDONYM_KEYS = [key.strip() for key in PSEUDONYM_KEY.split(",") if key.strip()]

DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "guardian",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "reviews.apps.ReviewsConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "reviews.middleware.RequestContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # After sessions, before CommonMiddleware (Django's documented place): every page, API
    # answer and error below it speaks the reviewer's language (cookie, else Accept-Language).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "reviews.middleware.AccessCacheMiddleware",
    "reviews.middleware.SessionLimitsMiddleware",
    "reviews.middleware.MFARequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",
    "reviews.middleware.AccessDeniedMiddleware",
]

ROOT_URLCONF = "annotator.urls"
WSGI_APPLICATION = "annotator.wsgi.application"

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
            ],
        },
    },
]

VAR_DIR = Path(env("ANNOTATOR_VAR_DIR", str(BASE_DIR / "var")))

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'demo.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend, but a connection busy within the last second skips the per-request
    # health check (annotator/postgresql/base.py).
    DATABASES["default"]["ENGINE"] = "annotator.postgresql"
    # Fail fast when the database is away: requests answer 503 instead of hanging.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"connect_timeout": env_int("DB_CONNECT_TIMEOUT", 3)})
# The reviewer loop's statements run as server-side prepared statements, planned once per
# connection (reviews/prepared.py). Off behind a pooler in transaction mode (PgBouncer's
# default before 1.21), where a connection's prepared statements are not the session's own.
DB_PREPARED_STATEMENTS = env_bool("DB_PREPARED_STATEMENTS", True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Wait for the writer lock instead of failing at once when two requests write.
    # IMMEDIATE transactions take the write lock up front, so the queue's
    # read-then-claim and the audit chain's read-then-append are serialized.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    # Axes first: it refuses a locked-out username+address before any password check.
    "axes.backends.AxesStandaloneBackend",
    # Django's ModelBackend, loading the signed-in user with a prepared query (reviews/sessions.py).
    "reviews.sessions.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# Guardian's anonymous user is never granted anything here; don't create it.
ANONYMOUS_USER_NAME = None

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"  # route names (reviews/urls.py), resolved by Django
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = True
# The UI languages (issue 12): English and one complete right-to-left language. Catalogues live
# in locale/<code>/LC_MESSAGES (django.po for pages and Python, djangojs.po for the scripts);
# README "Languages" says how to add a string. Names are each language's own.
LANGUAGES = [("en", "English"), ("ar", "العربية")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# The reviewer's choice (Django's set_language view) is kept in this cookie for a year; the
# scripts never read it.
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    # Audio lives here. It has no URL: MEDIA_URL is unset and no route serves it.
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(Path(env("MEDIA_ROOT", str(VAR_DIR / "media")))), "base_url": None},
    },
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_ROOT = STORAGES["default"]["OPTIONS"]["location"]
# AUDIO_STORAGE=s3 keeps audio in S3-compatible object storage (requirements-s3.txt): private
# objects, no public URLs; the bucket is reached only by the app and the proxy.
AUDIO_STORAGE = env("AUDIO_STORAGE", "filesystem")
if AUDIO_STORAGE == "s3":
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env("AUDIO_S3_BUCKET"), "endpoint_url": env("AUDIO_S3_ENDPOINT_URL"),
            "region_name": env("AUDIO_S3_REGION"), "default_acl": "private", "file_overwrite": False,
            "querystring_auth": True, "querystring_expire": 60, "object_parameters": {"CacheControl": "no-store"},
        },
    }
# How audio bytes leave: "django" streams them from the permission-checked view; "x-accel"
# has the view answer with an empty body and X-Accel-Redirect to an internal-only proxy
# location (AUDIO_ACCEL_PREFIX), so no audio URL is ever reachable from outside.
AUDIO_DELIVERY = env("AUDIO_DELIVERY", "django")
AUDIO_ACCEL_PREFIX = env("AUDIO_ACCEL_PREFIX", "/internal-audio/")

# A shared cache for several app servers (REDIS_URL); local memory for one process.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": env("REDIS_URL")}
    if env("REDIS_URL") else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
}
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "reviews.permissions.ServiceTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON everywhere; only the ingest view takes multipart (a form body elsewhere is a 415).
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "reviews.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

# Django's database sessions, read with a prepared query (reviews/sessions.py).
SESSION_ENGINE = "reviews.sessions"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# Idle timeout: the session expires this long after the last request (the activity
# middleware refreshes it at most once a minute). Absolute limit: SESSION_ABSOLUTE_SECONDS.
SESSION_IDLE_SECONDS = env_int("SESSION_IDLE_SECONDS", 30 * 60)
SESSION_COOKIE_AGE = SESSION_IDLE_SECONDS
SESSION_ABSOLUTE_SECONDS = env_int("SESSION_ABSOLUTE_SECONDS", 12 * 3600)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
CSRF_COOKIE_SAMESITE = "Lax"
# The CSRF secret lives in the session, not in a cookie of its own: one cookie carries the
# whole browser identity (pages read the token from the page, scripts from the login answer).
CSRF_USE_SESSIONS = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# "same-origin", not "no-referrer": with no-referrer browsers send "Origin: null" on
# form posts and Django's CSRF origin check refuses them. Audio answers no-referrer.
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    LANGUAGE_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

SPECTACULAR_SETTINGS = {
    "TITLE": "Voice-clip annotator API",
    "DESCRIPTION": "Ingest, review, supervision and subject lifecycle. Errors are JSON {code, detail}; "
                   "someone else's object answers 404.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # Each operation names the one way in that works for it (the extend_schema on each view).
    "APPEND_COMPONENTS": {"securitySchemes": {
        "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "sessionid",
                       "description": "Browser session from /accounts/login/ or POST /api/v1/auth/login/; "
                                      "unsafe methods also need the X-CSRFToken header (the login answer "
                                      "gives it)."},
        "serviceToken": {"type": "apiKey", "in": "header", "name": "Authorization",
                         "description": "Ingest services: `Token <key>`."},
    }},
}

# --- Lockout (django-axes): 5 failures per username and address, 15 minutes off ------
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "reviews.middleware.client_ip"
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True  # successes are in our own audit trail
AXES_VERBOSE = False
AXES_LOCKOUT_CALLABLE = "reviews.views.locked_out"

# --- Two-factor sign-in (django-otp, TOTP) ---------------------------------------
OTP_TOTP_ISSUER = env("OTP_TOTP_ISSUER", "Voice-clip annotator")

# --- Content-Security-Policy (django-csp): no inline script, no framing, audio from
# this origin or a blob made by the page.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "media-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# How many reverse proxies stand in front of the app; the client address is read
# from X-Forwarded-For only that many hops deep, never trusted beyond.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

# --- Ingest and audio -----------------------------------------------------------
INGEST_MAX_BYTES = env_int("INGEST_MAX_BYTES", 10 * 1024 * 1024)
INGEST_MAX_SECONDS = env_float("INGEST_MAX_SECONDS", 60.0)
INGEST_MIN_SECONDS = env_float("INGEST_MIN_SECONDS", 0.2)
# Uploads stay in memory (the ingest view refuses oversized bodies before reading),
# so an original recording never lands on disk.
FILE_UPLOAD_HANDLERS = ["django.core.files.uploadhandler.MemoryFileUploadHandler"]
FILE_UPLOAD_MAX_MEMORY_SIZE = INGEST_MAX_BYTES + 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FFMPEG_BINARY = env("FFMPEG_BINARY", "ffmpeg")
FFPROBE_BINARY = env("FFPROBE_BINARY", "ffprobe")
# Time limit for the whole audio work of one upload (probe, decode, disguise, encode) in its
# worker process, which is killed when it runs over (the name predates PyAV doing the work).
FFMPEG_TIMEOUT_SECONDS = env_float("FFMPEG_TIMEOUT_SECONDS", 30.0)
# Audio worker processes of `manage.py ingest_clips` (one per core unless told otherwise).
INGEST_WORKERS = env_int("INGEST_WORKERS", os.cpu_count() or 1)
# Pitch factors drawn per clip: never inside the "almost no change" band.
DISGUISE_PITCH_RANGE = (env_float("DISGUISE_PITCH_MIN", 0.78), env_float("DISGUISE_PITCH_MAX", 1.28))
DISGUISE_PITCH_DEAD_BAND = env_float("DISGUISE_PITCH_DEAD_BAND", 0.08)
# Named preset of reviews/disguise.py (figures in docs/privacy-benchmark.md).
# "voice" beat "pitch" on both privacy and intelligibility (worst-case EER 10.1% vs 3.5%,
# WER 12.5% vs 37.5%); "voice-strong" trades WER for EER (12.0%, 19.6%).
DISGUISE_PRESET = env("DISGUISE_PRESET", "voice")
AUDIO_TARGET_DBFS = env_float("AUDIO_TARGET_DBFS", -20.0)
AUDIO_SAMPLE_RATE = 16000
AUDIO_BITRATE = env("AUDIO_BITRATE", "48k")
WAVEFORM_PEAKS = 800

# --- Retention (manage.py apply_retention, daily) -------------------------------
RETENTION_UNLINK_DAYS = env_int("RETENTION_UNLINK_DAYS", 180)  # then the pseudonym link goes
RETENTION_AUDIO_DAYS = env_int("RETENTION_AUDIO_DAYS", 730)  # then the audio goes

# --- Review -------------------------------------------------------------------
AUDIO_TOKEN_MAX_AGE = min(env_int("AUDIO_TOKEN_MAX_AGE", 60), 120)
# Fetches of one escalated clip by one supervisor (each needs its own single-use token).
ESCALATION_PLAYS_PER_SUPERVISOR = env_int("ESCALATION_PLAYS_PER_SUPERVISOR", 5)
LEASE_SWEEP_BATCH = 200
# "next" sweeps overdue leases at most this often per process (expire_leases, from cron,
# sweeps too): a clip whose lease ran out returns to the queue within this many seconds.
LEASE_SWEEP_INTERVAL_SECONDS = env_int("LEASE_SWEEP_INTERVAL_SECONDS", 15)
# How long "next" keeps looking while every eligible clip is locked by leases in flight.
LEASE_WAIT_SECONDS = env_float("LEASE_WAIT_SECONDS", 2.0)
# How long a session trusts the roles and second-factor need it remembers; a role change or
# deactivation ends the user's sessions at once whatever this says.
ACCESS_RECHECK_SECONDS = env_int("ACCESS_RECHECK_SECONDS", 60)
# Daily quotas start again at midnight in this zone.
QUOTA_TIME_ZONE = env("QUOTA_TIME_ZONE", TIME_ZONE)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        # Request logs can carry query strings (audio tokens): keep them to warnings.
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
    },
}

# --- Supervisor console: anomaly thresholds (read from the audit trail) -------------
# The page fetches a clip once per lease and replays it from memory, so what is measured is
# fetches (relative to the reviewer's plays_per_clip quota) and the listening time the page
# reports at submit or skip (relative to the clip's length).
ANOMALY_FETCH_SHARE = env_float("ANOMALY_FETCH_SHARE", 0.5)  # more fetches of one clip than this share of the quota
ANOMALY_LISTEN_PASSES = env_int("ANOMALY_LISTEN_PASSES", 40)  # heard more than this many times the clip's length
ANOMALY_LISTEN_MIN_SECONDS = env_int("ANOMALY_LISTEN_MIN_SECONDS", 600)  # ... and more than this in all
ANOMALY_KEY_RACE_SECONDS = env_int("ANOMALY_KEY_RACE_SECONDS", 3)  # a refused play this soon after one's own submit
ANOMALY_DENIED_ATTEMPTS = env_int("ANOMALY_DENIED_ATTEMPTS", 3)  # denied attempts by one actor in a day
ANOMALY_WORK_START_HOUR = env_int("ANOMALY_WORK_START_HOUR", 7)  # access outside these local hours
ANOMALY_WORK_END_HOUR = env_int("ANOMALY_WORK_END_HOUR", 20)
ANOMALY_QUICK_SKIP_SECONDS = env_int("ANOMALY_QUICK_SKIP_SECONDS", 10)  # a skip this soon after the lease
ANOMALY_QUICK_SKIPS = env_int("ANOMALY_QUICK_SKIPS", 5)  # ... this many times in a day
ANOMALY_FAILED_LOGINS = env_int("ANOMALY_FAILED_LOGINS", 5)  # failed sign-ins for one account in a day
ANOMALY_WINDOW_DAYS = env_int("ANOMALY_WINDOW_DAYS", 7)  # how far back the anomaly views look
# Key for signed audit checkpoints; kept outside the database (like PSEUDONYM_KEY).
AUDIT_CHECKPOINT_KEY = secret("AUDIT_CHECKPOINT_KEY", "demo-only-audit-checkpoint-key-3b9d2f61c8e04a7f")
# Key that seals each audit event (HMAC-SHA256 over its content and its predecessor's seal).
# Only the environment holds it, so a database role that may INSERT cannot append an event
# that verify_audit accepts. To rotate, append a new key: the variable holds every key that
# sealed events still in the trail, comma-separated, oldest first; the last one seals.
AUDIT_CHAIN_KEY = secret("AUDIT_CHAIN_KEY", "demo-only-audit-chain-key-8e2a5c71d94f3b06a1c7e5d2")
AUDIT_CHAIN_KEYS = [key.strip() for key in AUDIT_CHAIN_KEY.split(",") if key.strip()]
if not AUDIT_CHAIN_KEYS:
    raise ImproperlyConfigured("AUDIT_CHAIN_KEY holds no key")
