"""Bench-only settings (bench/decision.py): the production settings with a URL
configuration that adds the durable-write floor. Never used outside the bench."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "floor_urls"
