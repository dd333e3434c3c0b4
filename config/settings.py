"""Settings for the chat app: every value comes from the environment (see .env.example).

With no environment at all the app runs on its embedded defaults: DEBUG on, a SQLite file,
the in-memory channel layer and the local Responses API simulator as the model.
"""

import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG: bool = env.bool("DJANGO_DEBUG", default=True)

_DEV_SECRET_KEY = "django-insecure-dev-only-key-never-use-in-production"  # noqa: S105
if DEBUG:
    SECRET_KEY: str = env.str("SECRET_KEY", default=_DEV_SECRET_KEY)
    ALLOWED_HOSTS: list[str] = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
else:
    SECRET_KEY = env.str("SECRET_KEY", default="")
    if not SECRET_KEY or SECRET_KEY == _DEV_SECRET_KEY or len(SECRET_KEY) < 50:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set to a random value of at least 50 characters in production "
            "(DJANGO_DEBUG=false). Generate one with: python -c "
            "'import secrets; print(secrets.token_urlsafe(64))'"
        )
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS must be set in production (DJANGO_DEBUG=false).")
    if "*" in ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS may not contain '*': name the hosts served.")

CSRF_TRUSTED_ORIGINS: list[str] = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# A websocket is accepted from the origin it came in on (scheme, host and port) and from these:
# full origins such as https://chat.example.org (config.origins).
WEBSOCKET_ALLOWED_ORIGINS: list[str] = env.list(
    "WEBSOCKET_ALLOWED_ORIGINS", default=CSRF_TRUSTED_ORIGINS
)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "servestatic.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "django_htmx",
    "axes",
    "accounts",
    # Before django_tasks_db: chat's db_worker (the same worker, with a heartbeat) wins.
    "chat",
    "django_tasks_db",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "servestatic.middleware.ServeStaticMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language: the browser's Accept-Language (or the language cookie) here; the one a
    # signed-in person chose, kept on their account, once they are known (below).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Before LoginRequiredMiddleware, whose user lookup is the first query of most requests.
    "config.unavailable.DatabaseUnavailableMiddleware",
    "accounts.middleware.HtmxLoginRequiredMiddleware",
    "accounts.middleware.AccountLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as axes asks: it turns a lock-out into our sign-in page (accounts.lockout).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.sign_in_methods",
                "chat.ui_strings.ui_strings",
            ],
        },
    },
]

# Database: a SQLite file by default; DATABASE_URL=postgres://... switches to PostgreSQL
# (psycopg 3 with its connection pool).
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A server that is down or unreachable fails a request in seconds, not after the OS's
    # TCP timeout (libpq counts whole seconds, at least 2).
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env.int(
        "DATABASE_CONNECT_TIMEOUT", default=3
    )
    if env.bool("DATABASE_POOL", default=True):
        from config.database import check_connection

        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"]["OPTIONS"]["pool"] = {
            "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=2),
            "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=20),
            # How long a request waits for a free connection before it gets the 503 page.
            "timeout": env.float("DATABASE_POOL_TIMEOUT", default=3.0),
            # The pool retries a lost connection with growing pauses; after a long outage those
            # pauses would outlast it by as much. Giving up as soon lets the next request after
            # the database is back start a fresh attempt at once.
            "reconnect_timeout": env.float("DATABASE_POOL_TIMEOUT", default=3.0),
            # Every connection is looked at before it is lent (a poll of its socket, a query
            # only when that finds something): after PostgreSQL restarts, the pool's idle
            # connections are dead, and without the check each would fail one request.
            "check": check_connection,
        }
else:
    # A file, not memory, for the test database: the browser tests' live server and the
    # websocket consumers reach it from other threads. One per test run, so runs never collide.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / f"test-{os.getpid()}.sqlite3")}
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

# Channel layer and cache: in-process by default; REDIS_URL switches both to Redis.
REDIS_URL: str = env.str("REDIS_URL", default="")
# redis-py's async pool refuses connections past 100 per process unless this is raised.
REDIS_MAX_CONNECTIONS: int = env.int("REDIS_MAX_CONNECTIONS", default=1000)
CACHE_KEY_PREFIX: str = env.str("CACHE_KEY_PREFIX", default="azchat")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # channels-redis, degrading instead of breaking while Redis is down.
            "BACKEND": "config.channel_layer.ResilientRedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "max_connections": REDIS_MAX_CONNECTIONS,
                        # redis-py 8 reads with a 5 s socket timeout, the same as the layer's
                        # 5 s blocking receive: the two race and kill consumers. Read longer.
                        "socket_timeout": 15,
                        "socket_connect_timeout": 1,
                    }
                ],
                "prefix": env.str("CHANNEL_LAYER_PREFIX", default="azchat"),
                "capacity": 1500,
                "expiry": 30,
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
            # Without these a Redis that stopped answering holds a request for ever; rate
            # limits and failover health then fall back to this process.
            "OPTIONS": {
                "socket_connect_timeout": env.float("CACHE_SOCKET_TIMEOUT", default=1.0),
                "socket_timeout": env.float("CACHE_SOCKET_TIMEOUT", default=1.0),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Background work (remote deletions, retention sweep) runs on django.tasks with the
# database backend; `manage.py db_worker` executes it.
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Sign-in throttling (django-axes; accounts.lockout). SIGN_IN_FAILURE_LIMIT failed sign-ins for
# one username, or from one address, refuse sign-in for that username or address (even with the
# right password) until SIGN_IN_LOCKOUT_MINUTES have passed since the last failure, or staff
# unlock it in the admin (Axes > Access attempts). Tries while locked out do not extend it.
# The address is the connection's peer, unless TRUSTED_PROXY_COUNT proxies in front of the app
# each append to X-Forwarded-For: then it is the entry that many places from the right.
SIGN_IN_FAILURE_LIMIT: int = env.int("SIGN_IN_FAILURE_LIMIT", default=5)
SIGN_IN_LOCKOUT_MINUTES: int = env.int("SIGN_IN_LOCKOUT_MINUTES", default=15)
TRUSTED_PROXY_COUNT: int = env.int("TRUSTED_PROXY_COUNT", default=0)
# Microsoft Entra ID sign-in (accounts.entra_*): on when the tenant, client id and secret are
# all set. ENTRA_AUTHORITY defaults to the tenant's v2.0 authority; its discovery document names
# the issuer and endpoints. https only, except a loopback address (the tests' local provider).
ENTRA_TENANT_ID: str = env.str("ENTRA_TENANT_ID", default="")
ENTRA_CLIENT_ID: str = env.str("ENTRA_CLIENT_ID", default="")
ENTRA_CLIENT_SECRET: str = env.str("ENTRA_CLIENT_SECRET", default="")
ENTRA_AUTHORITY: str = env.str(
    "ENTRA_AUTHORITY", default=f"https://login.microsoftonline.com/{ENTRA_TENANT_ID}/v2.0"
).rstrip("/")
ENTRA_ENABLED = bool(ENTRA_TENANT_ID and ENTRA_CLIENT_ID and ENTRA_CLIENT_SECRET)
ENTRA_ALLOW_GUESTS: bool = env.bool("ENTRA_ALLOW_GUESTS", default=False)
ENTRA_SIGN_OUT: bool = env.bool("ENTRA_SIGN_OUT", default=False)
ENTRA_USER_ROLE: str = env.str("ENTRA_USER_ROLE", default="Chat.User")
ENTRA_ADMIN_ROLE: str = env.str("ENTRA_ADMIN_ROLE", default="Chat.Admin")
ENTRA_SESSION_HOURS: int = env.int("ENTRA_SESSION_HOURS", default=8)
ENTRA_HTTP_TIMEOUT: float = env.float("ENTRA_HTTP_TIMEOUT", default=10.0)
# The password form (ours and the admin's, which is ours too). Off in production with Entra ID,
# so there is no second way in.
LOCAL_SIGN_IN: bool = env.bool("LOCAL_SIGN_IN", default=True)
if ENTRA_ENABLED:
    from accounts.entra_config import check_authority

    check_authority(ENTRA_AUTHORITY)
elif not LOCAL_SIGN_IN:
    raise ImproperlyConfigured(
        "LOCAL_SIGN_IN=false needs Microsoft Entra ID sign-in: set ENTRA_TENANT_ID, "
        "ENTRA_CLIENT_ID and ENTRA_CLIENT_SECRET, or nobody could sign in."
    )

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    *(["django.contrib.auth.backends.ModelBackend"] if LOCAL_SIGN_IN else []),
    *(["accounts.entra_backend.EntraBackend"] if ENTRA_ENABLED else []),
]
# mozilla-django-oidc runs the authorization-code flow (state, nonce and PKCE kept in the
# session); accounts.entra_config supplies the endpoints from the discovery document.
OIDC_RP_CLIENT_ID = ENTRA_CLIENT_ID
OIDC_RP_CLIENT_SECRET = ENTRA_CLIENT_SECRET
OIDC_RP_SIGN_ALGO = "RS256"
OIDC_RP_SCOPES = "openid profile email"
OIDC_USE_NONCE = True
OIDC_USE_PKCE = True
OIDC_PKCE_CODE_CHALLENGE_METHOD = "S256"
OIDC_TIMEOUT = ENTRA_HTTP_TIMEOUT
OIDC_AUTHENTICATION_CALLBACK_URL = "entra_callback"
OIDC_CREATE_USER = True
AXES_FAILURE_LIMIT = SIGN_IN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=SIGN_IN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "accounts.lockout.client_address"
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
# Kept out of the attempts' form data that the admin shows (the password always is).
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "csrfmiddlewaretoken"]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = None

# English and Simplified Chinese; adding a language is one .po file (README: "Languages").
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
SERVESTATIC_USE_FINDERS = DEBUG
SERVESTATIC_AUTOREFRESH = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "servestatic.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Security. Everything below is on in production and harmless in development.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=60 * 60 * 24 * 14)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT: bool = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS: int = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS: bool = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD: bool = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
if env.bool("TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# W021 asks for HSTS preload, which only public domains submitted to the browsers' list can use;
# an intranet host never is, so the check is silenced unless an operator opts into preload.
SILENCED_SYSTEM_CHECKS: list[str] = env.list(
    "SILENCED_SYSTEM_CHECKS", default=[] if SECURE_HSTS_PRELOAD else ["security.W021"]
)

# Content Security Policy (Django's own middleware): scripts only from us with a nonce,
# no inline styles, no eval. htmx is configured in base.html to need neither.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# The model. Loopback endpoints (the local simulator) are accepted in development only, unless
# an administrator allows them explicitly.
ALLOW_LOOPBACK_ENDPOINTS: bool = env.bool("ALLOW_LOOPBACK_ENDPOINTS", default=DEBUG)

# Endpoints and keys (chat.validators, chat.egress). Endpoints are Azure OpenAI hosts or end
# with one of ALLOWED_ENDPOINT_SUFFIXES (an organisation's gateway, e.g. .azure-api.net); the
# model client connects only to public addresses, or to ALLOWED_PRIVATE_NETWORKS (CIDRs of Azure
# Private Endpoints). A deployment's key variable must match API_KEY_ENV_PATTERN and never be
# one of the app's own settings.
ALLOWED_ENDPOINT_SUFFIXES: list[str] = env.list("ALLOWED_ENDPOINT_SUFFIXES", default=[])
ALLOWED_PRIVATE_NETWORKS: list[str] = env.list("ALLOWED_PRIVATE_NETWORKS", default=[])
API_KEY_ENV_PATTERN: str = env.str(
    "API_KEY_ENV_PATTERN", default=r"[A-Z0-9_]*_API_KEY|AZURE_OPENAI_[A-Z0-9_]+"
)
# Gateway timeouts in seconds. The read timeout is the longest silence between two stream
# events before the stream counts as stalled; the request timeout bounds a whole reply.
LLM_CONNECT_TIMEOUT: float = env.float("LLM_CONNECT_TIMEOUT", default=10.0)
LLM_READ_TIMEOUT: float = env.float("LLM_READ_TIMEOUT", default=60.0)
LLM_REQUEST_TIMEOUT: float = env.float("LLM_REQUEST_TIMEOUT", default=600.0)
# Retries happen only before the first token (429, 5xx, connection errors); a Retry-After
# longer than LLM_MAX_RETRY_WAIT seconds ends the turn at once with the wait in the message.
LLM_MAX_RETRIES: int = env.int("LLM_MAX_RETRIES", default=2)
LLM_MAX_RETRY_WAIT: float = env.float("LLM_MAX_RETRY_WAIT", default=10.0)
AZURE_OPENAI_TOKEN_SCOPE: str = env.str(
    "AZURE_OPENAI_TOKEN_SCOPE", default="https://cognitiveservices.azure.com/.default"
)

# Remote deletion of stored responses (chat.ledger). A deletion that meets 429, 5xx or a timeout
# is tried again after LEDGER_BACKOFF_BASE * 2**(attempt - 1) seconds (at most
# LEDGER_BACKOFF_MAX, and never sooner than Azure's Retry-After), LEDGER_MAX_ATTEMPTS times in
# all. A worker holds a row for LEDGER_LEASE_SECONDS; a killed worker's row is taken up again by
# `manage.py retention_sweep` once that lease has run out.
LEDGER_MAX_ATTEMPTS: int = env.int("LEDGER_MAX_ATTEMPTS", default=6)
LEDGER_BACKOFF_BASE: float = env.float("LEDGER_BACKOFF_BASE", default=5.0)
LEDGER_BACKOFF_MAX: float = env.float("LEDGER_BACKOFF_MAX", default=3600.0)
LEDGER_LEASE_SECONDS: int = env.int("LEDGER_LEASE_SECONDS", default=300)

# Failover (chat.failover): a deployment failing FAILOVER_FAILURE_THRESHOLD times within
# FAILOVER_WINDOW_SECONDS is skipped for FAILOVER_COOLDOWN_SECONDS (counted in the cache).
FAILOVER_FAILURE_THRESHOLD: int = env.int("FAILOVER_FAILURE_THRESHOLD", default=3)
FAILOVER_WINDOW_SECONDS: int = env.int("FAILOVER_WINDOW_SECONDS", default=120)
FAILOVER_COOLDOWN_SECONDS: int = env.int("FAILOVER_COOLDOWN_SECONDS", default=300)

# Chat limits. A turn may be refused by the per-user rate limit (CHAT_RATE_LIMIT turns per
# CHAT_RATE_WINDOW seconds, counted in the cache: Redis when REDIS_URL is set).
CHAT_MAX_MESSAGE_CHARS: int = env.int("CHAT_MAX_MESSAGE_CHARS", default=32_000)
CHAT_MAX_INSTRUCTIONS_CHARS: int = env.int("CHAT_MAX_INSTRUCTIONS_CHARS", default=8_000)
# Attachments (chat.attachments), sent to the model inline; the defaults follow what Azure
# OpenAI accepts in one request. Files live in STORAGES["default"] (the file system under
# MEDIA_ROOT, or Azure Blob Storage through django-storages); the app serves them to their
# owner only.
CHAT_IMAGE_MAX_BYTES: int = env.int("CHAT_IMAGE_MAX_BYTES", default=20 * 1024 * 1024)
CHAT_IMAGE_MAX_PIXELS: int = env.int("CHAT_IMAGE_MAX_PIXELS", default=40_000_000)
CHAT_PDF_MAX_BYTES: int = env.int("CHAT_PDF_MAX_BYTES", default=32 * 1024 * 1024)
CHAT_ATTACHMENTS_PER_MESSAGE: int = env.int("CHAT_ATTACHMENTS_PER_MESSAGE", default=10)
CHAT_ATTACHMENTS_MAX_TOTAL_BYTES: int = env.int(
    "CHAT_ATTACHMENTS_MAX_TOTAL_BYTES", default=50 * 1024 * 1024
)
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media")))
CHAT_MAX_OUTPUT_TOKENS: int | None = env.int("CHAT_MAX_OUTPUT_TOKENS", default=None)
CHAT_RATE_LIMIT: int = env.int("CHAT_RATE_LIMIT", default=30)
CHAT_RATE_WINDOW: int = env.int("CHAT_RATE_WINDOW", default=60)
# Open websockets per user, across every process (counted in Redis when REDIS_URL is set).
CHAT_MAX_SOCKETS_PER_USER: int = env.int("CHAT_MAX_SOCKETS_PER_USER", default=20)
# How often streamed text is flushed to other processes' tabs (this process's go at once).
CHAT_REMOTE_FLUSH_INTERVAL: float = env.float("CHAT_REMOTE_FLUSH_INTERVAL", default=0.25)
# Send a turn's model request while the turn is being saved, when the conversation continues
# from its stored head (chat.replies.EarlyRequest): the first token comes that much sooner.
# Off by default: an unused early request still costs the chain's input tokens (README).
CHAT_EARLY_REQUEST: bool = env.bool("CHAT_EARLY_REQUEST", default=False)
# A reply that meets database errors while being saved is kept in memory and saved again with
# backoff for this long (and for CHAT_SHUTDOWN_SAVE_SECONDS when the server is stopping).
CHAT_SAVE_RETRY_SECONDS: float = env.float("CHAT_SAVE_RETRY_SECONDS", default=300.0)
CHAT_SHUTDOWN_SAVE_SECONDS: float = env.float("CHAT_SHUTDOWN_SAVE_SECONDS", default=20.0)
# A tab that falls this far behind a reply (bytes queued, or seconds its oldest frame waited)
# is closed with a code its page answers by reconnecting and catching up.
CHAT_WATCHER_MAX_BYTES: int = env.int("CHAT_WATCHER_MAX_BYTES", default=1_048_576)
CHAT_WATCHER_MAX_LAG: float = env.float("CHAT_WATCHER_MAX_LAG", default=10.0)
# A tab following a reply written by another process checks the database this often, so a
# finish it missed (Redis down) still reaches it.
CHAT_REMOTE_POLL_SECONDS: float = env.float("CHAT_REMOTE_POLL_SECONDS", default=3.0)
# A reply's process renews its lease on the reply a third of this often; a reply not renewed
# for this long was abandoned: failed, or in background mode resumed by another process.
CHAT_REPLY_LEASE_SECONDS: float = env.float("CHAT_REPLY_LEASE_SECONDS", default=30.0)
# Past what one process streams smoothly, new replies wait (their tab says so) rather than
# every stream slowing down: while the event loop lags more than CHAT_ADMISSION_LAG_MS (0:
# never), or CHAT_MAX_STREAMS replies stream (0: no fixed cap). chat/replies/admission.py.
CHAT_ADMISSION_LAG_MS: float = env.float("CHAT_ADMISSION_LAG_MS", default=20.0)
CHAT_MAX_STREAMS: int = env.int("CHAT_MAX_STREAMS", default=0)
CHAT_CONVERSATIONS_PER_PAGE: int = env.int("CHAT_CONVERSATIONS_PER_PAGE", default=30)
CHAT_MESSAGES_PER_PAGE: int = env.int("CHAT_MESSAGES_PER_PAGE", default=100)

# Logging: readable lines in development, one JSON object per line in production.
# Message text and secrets are never logged; LOG_MESSAGE_TEXT is deliberately absent.
LOG_LEVEL: str = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT: str = env.str("LOG_FORMAT", default="text" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "config.logging.RedactSecretsFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["redact"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "httpcore2": {"level": "WARNING"},
        "openai": {"level": "WARNING"},
        "azure": {"level": "WARNING"},
        # Every sign-in and reset at INFO; lock-outs are WARNING.
        "axes": {"level": "WARNING"},
    },
}

# --- Reliability (processes, probes, the task worker) ------------------------------------------
# How many server processes serve this app (docker/entrypoint.sh passes it to uvicorn --workers).
# More than one needs REDIS_URL: the system check chat.E001 refuses otherwise.
WEB_CONCURRENCY: int = env.int("WEB_CONCURRENCY", default=1)
# /readyz gives each check this long (seconds), all at once, so it answers within about that.
READYZ_CHECK_TIMEOUT: float = env.float("READYZ_CHECK_TIMEOUT", default=0.8)
# The task worker (`manage.py db_worker`) records that it is alive this often (seconds); the
# ledger's admin page warns when no worker has done so for three times as long.
TASK_WORKER_HEARTBEAT_SECONDS: int = env.int("TASK_WORKER_HEARTBEAT_SECONDS", default=30)
