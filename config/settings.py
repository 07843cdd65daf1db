"""Warden settings. Every value comes from the environment with a safe default.

Embedded defaults (no variable set): SQLite file, local-memory cache, eager Celery.
Production: set DATABASE_URL, REDIS_URL, SECRET_KEY, ALLOWED_HOSTS.
"""

from datetime import timedelta

from config.env import BASE_DIR, env

DEBUG = env.bool("DEBUG", default=False)

# Required when DEBUG is off, but enforced where it is used rather than at import, so
# commands that need no secret (makemigrations, showmigrations) run without one:
# config/wsgi.py, config/asgi.py and the Celery worker refuse to start without it,
# Django refuses to sign anything with an empty key, and common.secrets.pepper() refuses
# to digest with an empty pepper.
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY and DEBUG:
    SECRET_KEY = "insecure-dev-only-" + "x" * 50

# Pepper for machine-key and token digests (HMAC-SHA-256); empty: SECRET_KEY. Separate
# so that rotating session signing need not invalidate every agent key.
WARDEN_KEY_PEPPER = env.str("WARDEN_KEY_PEPPER", default="")
# More peppers for machine-key secrets, by id ("2=…,3=…"), and the id new secrets are
# digested with (0: WARDEN_KEY_PEPPER). A stored digest names its pepper id, so a new
# pepper applies to new and rotated keys while the old ones keep working until retired.
WARDEN_KEY_PEPPERS = env.dict("WARDEN_KEY_PEPPERS", default={})
WARDEN_KEY_PEPPER_ID = env.int("WARDEN_KEY_PEPPER_ID", default=0)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "guardian",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc served from the package, no CDN
    "oauth2_provider",  # OAuth 2.1 authorization server for MCP clients (keys.oauth)
    "common",
    "tenants",
    "keys",
    "approvals",
    "audit",
    "notifications",
    "gateway",
    "oversight",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "common.middleware.RequestIdMiddleware",
    "common.middleware.ApiBodySizeLimitMiddleware",
    "common.middleware.QueryStringSanitizerMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "common.middleware.ApiJsonErrorsMiddleware",
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
                "tenants.sso.login_context",
            ],
        },
    },
]

DATABASE_URL = env.str("DATABASE_URL", default="") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
DATABASES = {"default": env.db_url_config(DATABASE_URL)}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
# How long a request waits for a lock before answering 503 `unavailable` with
# Retry-After (docs: "Contention and faults").
WARDEN_DB_LOCK_WAIT_SECONDS = env.int("WARDEN_DB_LOCK_WAIT_SECONDS", default=10)
WARDEN_RETRY_AFTER_SECONDS = env.int("WARDEN_RETRY_AFTER_SECONDS", default=2)
# Long-polls (approvals.waiting): concurrent waits per key (all nodes) and per process.
WARDEN_WAITS_PER_KEY = env.int("WARDEN_WAITS_PER_KEY", default=4)
WARDEN_WAIT_SLOTS_PER_PROCESS = env.int("WARDEN_WAIT_SLOTS_PER_PROCESS", default=4)
# Threads per process of the production server (config.asgi), like gthread's --threads.
WARDEN_SERVER_THREADS = env.int("WARDEN_SERVER_THREADS", default=8)
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # WAL: readers never block the writer. IMMEDIATE: a write transaction takes the
    # database's write lock at BEGIN, so it waits (busy timeout) instead of failing when
    # a read lock cannot be upgraded. synchronous stays FULL: a commit is durable.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        timeout=WARDEN_DB_LOCK_WAIT_SECONDS,
        transaction_mode="IMMEDIATE",
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL",
    )
elif DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # A bounded wait for row locks: past it the request answers 503 instead of queueing.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "options", f"-c lock_timeout={WARDEN_DB_LOCK_WAIT_SECONDS * 1000}"
    )
    # The few fixed statements every request runs (key lookup, the decision's writes)
    # are prepared once per connection (common.db.prepared_cursor); nothing else is,
    # since Django's cursors bind on the client. Off (DB_PREPARED_STATEMENTS=0) behind
    # a transaction-mode connection pooler, which cannot keep prepared statements.
    if env.bool("DB_PREPARED_STATEMENTS", default=True):
        DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", 2**31 - 1)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="warden"),
            # A cache that is down must fail fast: rate limits then count per process.
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    # Rate-limit and guessing counters live here: LocMemCache's default of 300 entries
    # (culling a third when full) would let a spray of usernames evict a lockout.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    }

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
    # OpenID Connect (tenants.sso); it does nothing unless WARDEN_OIDC_ENABLED.
    "tenants.sso.WardenOIDCBackend",
]

# --- Single sign-on (docs: "Single sign-on") ---
# Password login on the admin (and so for the session API): false refuses it with a
# message pointing at single sign-on.
WARDEN_LOCAL_PASSWORDS = env.bool("WARDEN_LOCAL_PASSWORDS", default=True)
WARDEN_OIDC_ENABLED = env.bool("WARDEN_OIDC_ENABLED", default=False)
# A provider login whose verified e-mail matches no user creates one (with no role).
WARDEN_OIDC_CREATE_USERS = env.bool("WARDEN_OIDC_CREATE_USERS", default=False)
OIDC_CREATE_USER = WARDEN_OIDC_CREATE_USERS
OIDC_RP_CLIENT_ID = env.str("WARDEN_OIDC_CLIENT_ID", default="")
OIDC_RP_CLIENT_SECRET = env.str("WARDEN_OIDC_CLIENT_SECRET", default="")
OIDC_OP_AUTHORIZATION_ENDPOINT = env.str("WARDEN_OIDC_AUTHORIZATION_ENDPOINT", default="")
OIDC_OP_TOKEN_ENDPOINT = env.str("WARDEN_OIDC_TOKEN_ENDPOINT", default="")
OIDC_OP_USER_ENDPOINT = env.str("WARDEN_OIDC_USERINFO_ENDPOINT", default="")
OIDC_OP_JWKS_ENDPOINT = env.str("WARDEN_OIDC_JWKS_ENDPOINT", default="")
OIDC_RP_SIGN_ALGO = env.str("WARDEN_OIDC_SIGN_ALGO", default="RS256")
OIDC_RP_SCOPES = "openid email"
OIDC_USE_PKCE = True
LOGIN_REDIRECT_URL = "/admin/"
LOGIN_REDIRECT_URL_FAILURE = "/admin/login/?sso=failed"
GUARDIAN_RAISE_403 = False
ANONYMOUS_USER_NAME = None  # no anonymous guardian user: anonymous callers hold nothing

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.str("STATIC_ROOT", default=str(BASE_DIR / "var" / "static"))

# Request bodies on the API are small JSON documents; anything larger is refused
# with 413 payload_too_large before parsing.
WARDEN_API_MAX_BODY_BYTES = env.int("WARDEN_API_MAX_BODY_BYTES", default=256 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = WARDEN_API_MAX_BODY_BYTES

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "keys.authentication.MachineKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["common.api.permissions.IsAuthenticatedPrincipal"],
    "DEFAULT_THROTTLE_CLASSES": ["keys.throttling.PrincipalRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["common.api.parsers.LimitedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "common.api.schema.WardenAutoSchema",
    "EXCEPTION_HANDLER": "common.api.exceptions.json_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append(
        "rest_framework.renderers.BrowsableAPIRenderer"
    )

# Humans on a session share one default budget; each machine key has its own.
WARDEN_USER_RATE_PER_MINUTE = env.int("WARDEN_USER_RATE_PER_MINUTE", default=600)
WARDEN_KEY_DEFAULT_RATE_PER_MINUTE = env.int("WARDEN_KEY_DEFAULT_RATE_PER_MINUTE", default=120)
# How long a rotated-out secret keeps working, so agents can roll without downtime.
WARDEN_KEY_ROTATION_GRACE = timedelta(hours=env.int("WARDEN_KEY_ROTATION_GRACE_HOURS", default=24))
WARDEN_DRY_RUN_DAYS = env.int("WARDEN_DRY_RUN_DAYS", default=7)
WARDEN_TRUSTED_PROXIES = env.int("WARDEN_TRUSTED_PROXIES", default=0)
# Guessing resistance (docs: "Login and key-guessing policy"). Failed machine-key
# authentications per client address and per key prefix, and failed human logins per
# account and per client address, each within a fixed window; past the limit the
# caller is refused (429 / a lockout message) until the window ends.
WARDEN_KEY_GUESS_WINDOW_SECONDS = env.int("WARDEN_KEY_GUESS_WINDOW_SECONDS", default=300)
WARDEN_KEY_GUESS_MAX_PER_ADDRESS = env.int("WARDEN_KEY_GUESS_MAX_PER_ADDRESS", default=30)
WARDEN_KEY_GUESS_MAX_PER_PREFIX = env.int("WARDEN_KEY_GUESS_MAX_PER_PREFIX", default=10)
WARDEN_LOGIN_WINDOW_SECONDS = env.int("WARDEN_LOGIN_WINDOW_SECONDS", default=900)
WARDEN_LOGIN_MAX_FAILURES_PER_ACCOUNT = env.int("WARDEN_LOGIN_MAX_FAILURES_PER_ACCOUNT", default=10)
WARDEN_LOGIN_MAX_FAILURES_PER_ADDRESS = env.int("WARDEN_LOGIN_MAX_FAILURES_PER_ADDRESS", default=30)

# Gateway (connectors). Fernet keys, comma-separated: the first encrypts, all decrypt
# (rotation). Empty with DEBUG: a key derived from SECRET_KEY (development only).
WARDEN_SECRETS_KEY = env.list("WARDEN_SECRETS_KEY", default=[])
# Private/loopback networks connectors may reach (operator setting; default none).
WARDEN_CONNECTOR_PRIVATE_NETWORKS = env.list("WARDEN_CONNECTOR_PRIVATE_NETWORKS", default=[])
WARDEN_CONNECTOR_TIMEOUT_SECONDS = env.float("WARDEN_CONNECTOR_TIMEOUT_SECONDS", default=15.0)
# Idle upstream connections are reused for this long (0: a new connection per call).
# Keep it below the upstreams' keep-alive timeout (uvicorn 5 s, gunicorn 2 s).
WARDEN_CONNECTOR_KEEPALIVE_SECONDS = env.float("WARDEN_CONNECTOR_KEEPALIVE_SECONDS", default=4.0)
WARDEN_CONNECTOR_MAX_RESPONSE_BYTES = env.int(
    "WARDEN_CONNECTOR_MAX_RESPONSE_BYTES", default=1024 * 1024
)
# Credential references `env:NAME` may only name variables with this prefix, so a
# workspace can never point a connector at the server's own secrets (SECRET_KEY, ...).
WARDEN_CREDENTIAL_ENV_PREFIX = env.str("WARDEN_CREDENTIAL_ENV_PREFIX", default="WARDEN_CRED_")
# Credentials belong to one workspace: the operator assigns each workspace (by id) a
# namespace of capitals and digits, e.g. "<workspace uuid>=ACME,<uuid>=GLOBEX"; its
# references resolve only inside it (`env:WARDEN_CRED_ACME_...`, `vault:ACME/...`).
# A workspace without one can use no credential references (gateway.credentials).
WARDEN_CREDENTIAL_NAMESPACES = env.dict("WARDEN_CREDENTIAL_NAMESPACES", default={})
# The customer's secret stores (gateway.secret_stores): each scheme is registered only
# when configured. Literal header values can be refused for the whole deployment.
WARDEN_CREDENTIAL_FILE_ROOT = env.str("WARDEN_CREDENTIAL_FILE_ROOT", default="")
WARDEN_VAULT_ADDR = env.str("WARDEN_VAULT_ADDR", default="")
WARDEN_VAULT_TOKEN = env.str("WARDEN_VAULT_TOKEN", default="")
WARDEN_VAULT_TOKEN_FILE = env.str("WARDEN_VAULT_TOKEN_FILE", default="")
WARDEN_VAULT_MOUNT = env.str("WARDEN_VAULT_MOUNT", default="secret")
WARDEN_VAULT_NAMESPACE = env.str("WARDEN_VAULT_NAMESPACE", default="")
WARDEN_AWS_SECRETS_ENABLED = env.bool("WARDEN_AWS_SECRETS_ENABLED", default=False)
WARDEN_AWS_SECRETS_ENDPOINT = env.str("WARDEN_AWS_SECRETS_ENDPOINT", default="")
WARDEN_CREDENTIAL_LITERALS = env.bool("WARDEN_CREDENTIAL_LITERALS", default=True)
# The call-time rug-pull check reads an upstream's tools/list at most this often.
WARDEN_UPSTREAM_DEFINITION_TTL = env.float("WARDEN_UPSTREAM_DEFINITION_TTL", default=60.0)
# Every MCP connector's catalog is synced (changes disable tools) this often.
WARDEN_CONNECTOR_SYNC_SECONDS = env.int("WARDEN_CONNECTOR_SYNC_SECONDS", default=900)

SPECTACULAR_SETTINGS = {
    "TITLE": "Warden API",
    "DESCRIPTION": "Guardrails control plane for AI agents: ask before acting.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "common.api.schema.declare_text_rules",
    ],
    # Choice fields named alike (status, role, level...) get distinct, stable enum names.
    "ENUM_NAME_OVERRIDES": {
        "ConfirmationStatusEnum": "approvals.models.ConfirmationRequest.Status",
        "PostureLevelEnum": "oversight.posture.LEVELS",
        "ConfirmationRuleEnum": "approvals.models.Tool.Confirmation",
    },
}

# Celery: eager (in-process) unless a broker is configured.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
# The queue tasks go to and workers read by default: lets two deployments (or a test
# run) share one Redis without taking each other's tasks.
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="warden@localhost")

# Production hardening; `manage.py check --deploy` passes with DEBUG off.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # The OAuth libraries log redirect URLs with authorization codes, and token values,
    # at DEBUG: never below INFO, whatever LOG_LEVEL says.
    "loggers": {
        "oauth2_provider": {"level": "INFO"},
        "oauthlib": {"level": "INFO"},
    },
}
CSRF_FAILURE_VIEW = "common.views.csrf_failure"

# Background work (issue 6; docs "Background work"). Schedules live in code, reviewed
# like code; per-workspace knobs live in notifications.WorkspaceAutomationSettings.
from celery.schedules import crontab  # noqa: E402

CELERY_BEAT_SCHEDULE = {
    "expire-confirmations": {
        "task": "approvals.expire_confirmations",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "remind-pending-confirmations": {
        "task": "notifications.remind_pending_confirmations",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "send-approval-digests": {
        "task": "notifications.send_approval_digests",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "sweep-notification-outbox": {
        "task": "notifications.sweep_outbox",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "detect-anomalies": {
        "task": "audit.detect_anomalies_all",
        "schedule": crontab(minute=5),
        "options": {"expires": 3000},
    },
    "flag-unreported-results": {
        "task": "oversight.flag_unreported_results_all",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 240},
    },
    "export-audit": {
        "task": "audit.export_all",
        "schedule": crontab(minute="*/15"),
        "options": {"expires": 600},
    },
    "prune-audit-retention": {
        "task": "audit.prune_all",
        "schedule": crontab(hour=3, minute=15),
        "options": {"expires": 3600},
    },
    "prune-plain-copies": {
        "task": "approvals.prune_plain_copies",
        "schedule": crontab(hour=3, minute=45),
        "options": {"expires": 3600},
    },
    "checkpoint-audit-chains": {
        "task": "audit.checkpoint_all",
        "schedule": float(env.int("WARDEN_AUDIT_CHECKPOINT_SECONDS", default=300)),
        "options": {"expires": 120},
    },
    "remind-unresolved-exceptions": {
        "task": "notifications.remind_unresolved_exceptions",
        "schedule": crontab(hour=8, minute=0),
        "options": {"expires": 3600},
    },
    "sync-connectors": {
        "task": "gateway.sync_connectors",
        "schedule": float(WARDEN_CONNECTOR_SYNC_SECONDS),
        "options": {"expires": max(WARDEN_CONNECTOR_SYNC_SECONDS - 5, 30)},
    },
    "verify-audit-chains": {
        "task": "audit.verify_all_chains",
        "schedule": crontab(hour=2, minute=30),
        "options": {"expires": 3600},
    },
}
# Outgoing webhooks: timeout per attempt, consecutive failures before an endpoint is
# disabled, attempts per delivery before it is given up, and plain http (tests only).
WARDEN_WEBHOOK_TIMEOUT_SECONDS = env.int("WARDEN_WEBHOOK_TIMEOUT_SECONDS", default=10)
WARDEN_WEBHOOK_MAX_CONSECUTIVE_FAILURES = env.int(
    "WARDEN_WEBHOOK_MAX_CONSECUTIVE_FAILURES", default=5
)
WARDEN_WEBHOOK_MAX_ATTEMPTS = env.int("WARDEN_WEBHOOK_MAX_ATTEMPTS", default=15)
WARDEN_WEBHOOK_ALLOW_HTTP = env.bool("WARDEN_WEBHOOK_ALLOW_HTTP", default=False)
# Slack approvals (docs "Slack"): the Slack app's signing secret (interactions are
# refused without it), Slack's Web API base URL (tests point it at a local fake) and the
# timeout of one Web API call. Bot tokens are per workspace, stored encrypted.
WARDEN_SLACK_SIGNING_SECRET = env.str("WARDEN_SLACK_SIGNING_SECRET", default="")
WARDEN_SLACK_API_URL = env.str("WARDEN_SLACK_API_URL", default="https://slack.com/api/")
WARDEN_SLACK_TIMEOUT_SECONDS = env.int("WARDEN_SLACK_TIMEOUT_SECONDS", default=10)
# Notifications leave the request on a background thread once it committed: the
# delivery itself without a broker (eager Celery), the publish to the broker otherwise,
# so neither a hanging receiver nor a broker outage holds an answer. False: inline
# (tests that assert a delivery at once).
WARDEN_DELIVERY_IN_BACKGROUND = env.bool("WARDEN_DELIVERY_IN_BACKGROUND", default=True)
# Without a broker there is no beat: the background lane sweeps the outbox this often.
WARDEN_EAGER_SWEEP_SECONDS = env.int("WARDEN_EAGER_SWEEP_SECONDS", default=60)
# Pending deliveries untried for this long are re-enqueued (longer than the longest
# retry backoff, 10 minutes, so live retry chains are left alone).
WARDEN_OUTBOX_SWEEP_AFTER_SECONDS = env.int("WARDEN_OUTBOX_SWEEP_AFTER_SECONDS", default=900)
# Base URL for links in notifications (e.g. https://warden.example.com); empty: no links
# (the notification says so). With DEBUG (`make run`) it defaults to the dev server.
WARDEN_PUBLIC_URL = env.str("WARDEN_PUBLIC_URL", default="http://127.0.0.1:8000" if DEBUG else "")
# Directories under which operators may point a workspace's audit export; empty: none.
WARDEN_EXPORT_DIRECTORY_ROOTS = env.list("WARDEN_EXPORT_DIRECTORY_ROOTS", default=[])

# Evidence against database access (docs "Evidence: threat model"). The Ed25519 key
# that signs chain checkpoints and keys the per-entry MAC: base64 of the 32-byte seed or
# a PEM block; required with DEBUG off (serving processes refuse to start without it).
# Never stored in the database. Retired public keys (base64) still trusted for older
# checkpoints after a rotation go in WARDEN_AUDIT_TRUSTED_PUBLIC_KEYS.
WARDEN_AUDIT_SIGNING_KEY = env.str("WARDEN_AUDIT_SIGNING_KEY", default="")
# Key of the retention checkpoints' HMAC; empty: derived from the key pepper.
WARDEN_AUDIT_CHECKPOINT_KEY = env.str("WARDEN_AUDIT_CHECKPOINT_KEY", default="")
WARDEN_AUDIT_TRUSTED_PUBLIC_KEYS = env.list("WARDEN_AUDIT_TRUSTED_PUBLIC_KEYS", default=[])
# A checkpoint every N entries (in the write that reaches it) and, for chains that moved,
# every T seconds (beat task "checkpoint-audit-chains").
WARDEN_AUDIT_CHECKPOINT_EVERY = env.int("WARDEN_AUDIT_CHECKPOINT_EVERY", default=1000)
# Group commit of audit appends (docs "Contention"): a decision that finds its
# workspace's chain head busy commits its entry to a queue and seals it right after,
# instead of waiting for the holder's commit. Off: every append queues on the head lock.
WARDEN_AUDIT_GROUP_COMMIT = env.bool("WARDEN_AUDIT_GROUP_COMMIT", default=True)
# A server process's sealer seals what any (killed) process left queued this long.
WARDEN_AUDIT_SEALER_SWEEP_SECONDS = env.float("WARDEN_AUDIT_SEALER_SWEEP_SECONDS", default=0.5)
# Processes walking a long chain in parallel (audit_verify, PostgreSQL); 0: one per CPU.
WARDEN_AUDIT_VERIFY_WORKERS = env.int("WARDEN_AUDIT_VERIFY_WORKERS", default=0)
WARDEN_AUDIT_CHECKPOINT_SECONDS = env.int("WARDEN_AUDIT_CHECKPOINT_SECONDS", default=300)
# Exception records open longer than this many days are brought to the workspace's
# owners (once per period) rather than holding audit retention back unnoticed.
WARDEN_EXCEPTION_REMIND_DAYS = env.int("WARDEN_EXCEPTION_REMIND_DAYS", default=7)

# OAuth 2.1 for MCP clients (docs "Connecting with OAuth"): Warden is the authorization
# server and /mcp the protected resource. django-oauth-toolkit does the protocol; a
# consent creates a MachineKey (keys.oauth) and its access tokens resolve to it.
# The resource identifier tokens are bound to (RFC 8707); empty: WARDEN_PUBLIC_URL + /mcp,
# else the URL of the request's own /mcp (behind ALLOWED_HOSTS).
WARDEN_OAUTH_RESOURCE = env.str("WARDEN_OAUTH_RESOURCE", default="")
WARDEN_OAUTH_ACCESS_TOKEN_SECONDS = env.int("WARDEN_OAUTH_ACCESS_TOKEN_SECONDS", default=3600)
WARDEN_OAUTH_REFRESH_TOKEN_SECONDS = env.int(
    "WARDEN_OAUTH_REFRESH_TOKEN_SECONDS", default=30 * 24 * 3600
)
# Open dynamic client registration (RFC 7591), which Claude and ChatGPT connectors use;
# off: only clients an operator registered can connect.
WARDEN_OAUTH_OPEN_REGISTRATION = env.bool("WARDEN_OAUTH_OPEN_REGISTRATION", default=True)
# Registrations answered per client address per hour (0: unlimited); then 429.
WARDEN_OAUTH_REGISTRATIONS_PER_HOUR = env.int("WARDEN_OAUTH_REGISTRATIONS_PER_HOUR", default=20)
# Client ID metadata documents (the client_id is an https URL Warden fetches); off:
# only registered clients.
WARDEN_OAUTH_CLIENT_METADATA_DOCUMENTS = env.bool(
    "WARDEN_OAUTH_CLIENT_METADATA_DOCUMENTS", default=True
)
# Private-use redirect URI schemes of native apps the operator allows (RFC 8252 §7.1:
# reverse domain names, e.g. com.example.app); https and loopback http always are.
WARDEN_OAUTH_PRIVATE_USE_SCHEMES = env.list("WARDEN_OAUTH_PRIVATE_USE_SCHEMES", default=[])
LOGIN_URL = "admin:login"
# django-oauth-toolkit's own models, named so migrations can depend on them.
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth2_provider.AccessToken"
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "oauth2_provider.RefreshToken"
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "oauth2_provider.IDToken"
OAUTH2_PROVIDER_GRANT_MODEL = "oauth2_provider.Grant"

OAUTH2_PROVIDER = {
    # The key-grantable scopes (common.scopes.ALL_SCOPES) are the OAuth scopes.
    "SCOPES": {
        "actions:read": "Ask for read-level tools",
        "actions:write": "Ask for write-level tools",
        "actions:external": "Ask for tools with external effects (send, pay, publish)",
        "keys:read": "List and read keys",
        "keys:write": "Create, rotate and revoke keys",
        "members:write": "Manage members",
        "tools:write": "Change the tool catalog",
        "audit:read": "Read audit entries",
        "connectors:read": "Read connectors",
        "connectors:write": "Change connectors",
        "workspace:admin": "Everything, workspace settings included",
    },
    "DEFAULT_SCOPES": ["actions:read"],
    "PKCE_REQUIRED": True,
    "ACCESS_TOKEN_EXPIRE_SECONDS": WARDEN_OAUTH_ACCESS_TOKEN_SECONDS,
    "REFRESH_TOKEN_EXPIRE_SECONDS": WARDEN_OAUTH_REFRESH_TOKEN_SECONDS,
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    # `http` stays for the loopback callbacks of native MCP clients (RFC 8252:
    # http://127.0.0.1:<port>/callback; Claude Code, the Inspector). PKCE (S256, required)
    # protects the code on that hop. Hence the silenced deploy check below.
    # keys.oauth.redirect_uri_problem narrows http to the loopback interface.
    "ALLOWED_REDIRECT_URI_SCHEMES": [
        "http",
        "https",
        *(s.lower() for s in WARDEN_OAUTH_PRIVATE_USE_SCHEMES if "." in s),
    ],
    # RFC 9700 (OAuth security BCP): S256 only, no implicit or password grant, tokens
    # stored as digests, the `iss` parameter on authorization responses.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
    "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OAUTH2_GRANT_TYPES_SUPPORTED": ["authorization_code", "refresh_token"],
    "OAUTH2_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": [
        "none",
        "client_secret_basic",
        "client_secret_post",
    ],
    "DCR_ENABLED": True,
    "DCR_REGISTRATION_PERMISSION_CLASSES": ("keys.oauth.RegistrationPermission",),
    # Client ID metadata documents (MCP authorization 2025-11-25), fetched under the
    # shared outbound address policy (keys.oauth.MetadataFetcher).
    "CIMD_ENABLED": WARDEN_OAUTH_CLIENT_METADATA_DOCUMENTS,
    "CIMD_METADATA_FETCHER": "keys.oauth.MetadataFetcher",
    "CIMD_FETCH_TIMEOUT_SECONDS": 5,
    "CIMD_MAX_DOCUMENT_SIZE": 16 * 1024,
    "OAUTH2_PROTECTED_RESOURCE_NAME": "Warden MCP",
}

# django-oauth-toolkit's RFC 9700 deploy check warns that `http` redirect URIs are
# allowed: they are, on purpose, for RFC 8252 loopback callbacks (OAUTH2_PROVIDER above).
SILENCED_SYSTEM_CHECKS = ["oauth2_provider.W008"]
