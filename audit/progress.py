"""A tiny terminal progress bar (no dependency): shown only on a TTY, redrawn at
most ten times a second, cleared when done."""

from __future__ import annotations

import time
from typing import TextIO


def is_tty(stream) -> bool:
    stream = getattr(stream, "_out", stream)  # Django's OutputWrapper
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class ProgressBar:
    """Callable as `progress(done, total)`, the shape verify_chain expects."""

    def __init__(
        self,
        stream: TextIO,
        *,
        label: str = "",
        total: int = 0,
        enabled: bool | None = None,
        width: int = 30,
        min_interval: float = 0.1,
    ):
        self.stream = getattr(stream, "_out", stream)
        self.label = label
        self.total = total
        self.enabled = is_tty(self.stream) if enabled is None else enabled
        self.width = width
        self.min_interval = min_interval
        self.started = time.perf_counter()
        self._last_draw = 0.0
        self._drawn = False

    def __call__(self, done: int, total: int | None = None) -> None:
        self.update(done, total)

    def update(self, done: int, total: int | None = None, *, force: bool = False) -> None:
        if total is not None:
            self.total = total
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self._last_draw < self.min_interval:
            return
        self._last_draw = now
        self.stream.write("\r" + self.render(done, now - self.started))
        self.stream.flush()
        self._drawn = True

    def render(self, done: int, elapsed: float) -> str:
        rate = done / elapsed if elapsed > 0 else 0.0
        if self.total:
            fraction = min(done / self.total, 1.0)
            filled = int(fraction * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            text = f"[{bar}] {fraction:4.0%} {done:,}/{self.total:,}"
        else:
            text = f"{done:,}"
        prefix = f"{self.label} " if self.label else ""
        return f"{prefix}{text} {rate:,.0f}/s"

    def finish(self) -> None:
        if self.enabled and self._drawn:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
