"""Progress of a batch in words, at a steady rhythm: ``1,250 / 5,000 sent, 3 failed, 41/s, ETA 1 min 32 s``."""

from __future__ import annotations

import time
from collections.abc import Callable


def format_duration(seconds: float) -> str:
    """``45 s``, ``1 min 32 s``, ``2 h 5 min`` (rounded to the second)."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def format_rate(per_second: float) -> str:
    """``41/s``, ``2.5/s``, or ``30/min`` below one a second."""
    if per_second >= 10:
        return f"{per_second:,.0f}/s"
    if per_second >= 1:
        return f"{per_second:.1f}/s"
    return f"{per_second * 60:.0f}/min"


class Progress:
    """Counts what a batch has done and says so when a line is due (every ``interval`` seconds).

    :param total: rows this try will send (rows accepted by an earlier try are not counted).
    :param interval: seconds between two progress lines.
    :param clock: a monotonic clock (injectable for tests).
    """

    def __init__(self, total: int, interval: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self.interval = interval
        self._clock = clock
        self.started = clock()
        self._next = self.started + interval
        self.sent = 0
        self.failed = 0
        self.unknown = 0

    @property
    def done(self) -> int:
        """Rows with an outcome (sent, failed or unknown)."""
        return self.sent + self.failed + self.unknown

    def line(self) -> str:
        """``1,250 / 5,000 sent, 3 failed, 41/s, ETA 1 min 32 s``."""
        elapsed = self._clock() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        parts = [f"{self.sent:,} / {self.total:,} sent", f"{self.failed:,} failed"]
        if self.unknown:
            parts.append(f"{self.unknown:,} unknown")
        parts.append(format_rate(rate))
        left = self.total - self.done
        if left <= 0:
            parts.append(f"done in {format_duration(elapsed)}")
        elif rate > 0:
            parts.append(f"ETA {format_duration(left / rate)}")
        else:
            parts.append("ETA unknown")
        return ", ".join(parts)

    def due(self) -> str | None:
        """The progress line when one is due (and schedule the next), else ``None``."""
        now = self._clock()
        if now < self._next:
            return None
        while self._next <= now:
            self._next += self.interval
        return self.line()
