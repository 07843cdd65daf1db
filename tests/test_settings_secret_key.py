"""SECRET_KEY is required where it matters (serving, digests), not for every command."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _production_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "WARDEN_KEY_PEPPER")}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", DEBUG="0", DATABASE_URL="")
    return env


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=_production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_makemigrations_check_runs_without_a_secret_key():
    result = subprocess.run(
        [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
        cwd=ROOT,
        env=_production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_wsgi_refuses_to_start_without_a_secret_key():
    result = _run("import config.wsgi")
    assert result.returncode != 0
    assert "SECRET_KEY is required when DEBUG is off" in result.stderr


def test_wsgi_starts_with_a_secret_key():
    env = {**_production_env(), "SECRET_KEY": "k" * 60}
    result = subprocess.run(
        [sys.executable, "-c", "import config.wsgi"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_no_digest_is_ever_keyed_with_an_empty_pepper():
    result = _run(
        "import django; django.setup()\nfrom keys.secrets import digest\ndigest('anything')"
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
