"""Progress lines: the wording, the rate and ETA, and the steady rhythm."""

from __future__ import annotations

import pytest

from airflow_provider_waslah.batch.progress import Progress, format_duration, format_rate
from tests.batch.support import Clock


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (45.4, "45 s"), (92, "1 min 32 s"), (120, "2 min"), (3600, "1 h"), (7500, "2 h 5 min")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(("rate", "text"), [(41.2, "41/s"), (1234.0, "1,234/s"), (2.54, "2.5/s"), (0.5, "30/min")])
def test_format_rate(rate: float, text: str) -> None:
    assert format_rate(rate) == text


def test_the_issues_example_line() -> None:
    clock = Clock()
    progress = Progress(5000, clock=clock)
    progress.sent, progress.failed = 1250, 3
    clock.advance(30.56)  # 1,253 outcomes in 30.56 s: 41/s; 3,747 left: 91.4 s
    assert progress.line() == "1,250 / 5,000 sent, 3 failed, 41/s, ETA 1 min 31 s"


def test_unknown_rows_are_counted_and_the_end_says_done() -> None:
    clock = Clock()
    progress = Progress(10, clock=clock)
    progress.sent, progress.unknown = 9, 1
    clock.advance(5)
    assert progress.line() == "9 / 10 sent, 0 failed, 1 unknown, 2.0/s, done in 5 s"


def test_a_line_every_interval_not_more() -> None:
    clock = Clock()
    progress = Progress(100, interval=30, clock=clock)
    assert progress.due() is None
    clock.advance(29.9)
    assert progress.due() is None
    clock.advance(0.1)
    assert progress.due() == "0 / 100 sent, 0 failed, 0/min, ETA unknown"
    assert progress.due() is None
    clock.advance(95)  # a long stall (at 125 s): one line, then back on the rhythm of 30 s from the start
    assert progress.due() is not None
    assert progress.due() is None
    clock.advance(24.9)
    assert progress.due() is None
    clock.advance(0.1)  # 150 s
    assert progress.due() is not None
