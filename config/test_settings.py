"""Test settings: the real settings, made fast and deterministic."""

from config.settings import *  # noqa: F403

SECRET_KEY = "test-only-secret-key-" + "t" * 40
SECURE_SSL_REDIRECT = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_URL = "memory://"
# Each test gets a clean in-process cache (autouse fixture), even when REDIS_URL is set;
# tests that need Redis itself opt in explicitly.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# A fixed Fernet key for tests (never a production value).
WARDEN_SECRETS_KEY = ["dGVzdC1vbmx5LWZlcm5ldC1rZXktMzItYnl0ZXMhISE="]
# Deliveries run inline, inside the test's transaction, so a test can assert them at
# once; tests of the background hand-off (tests/reliability) switch this back on.
WARDEN_DELIVERY_IN_BACKGROUND = False
# A fixed audit signing key (base64 Ed25519 seed), test-only.
WARDEN_AUDIT_SIGNING_KEY = "dGVzdC1vbmx5LWF1ZGl0LXNpZ25pbmcta2V5LTMyYnk="
# No sweeping sealer thread in the test process (it would hold a connection to the
# test database); tests/reliability's servers run with the default.
WARDEN_AUDIT_SEALER_SWEEP_SECONDS = 0
