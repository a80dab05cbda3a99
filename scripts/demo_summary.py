"""Print what every recipient received, from a running Waslah emulator's ledger.

    python scripts/demo_summary.py http://127.0.0.1:8787 [--settle 10] [--expect TEXT ...]

One row per message, in the order they were sent: id, recipient, type, status, and the text
(first line) or the file and caption; failed messages show Waslah's reason. ``--settle`` waits
up to that many seconds for messages still ``pending`` (scheduled or queued) to move on.
``--expect TEXT`` checks that some message contains TEXT (exit 1 if not).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from typing import Any

from airflow_provider_waslah.emulator.handle import EmulatorHandle

CONTENT_WIDTH = 72


def rows_of(ledger: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The ledger (per recipient) flattened to one dict per message, ordered by message id."""
    rows = [dict(entry, recipient=recipient) for recipient, entries in ledger.items() for entry in entries]
    return sorted(rows, key=lambda row: row["message_id"])


def shorten(text: str, width: int = CONTENT_WIDTH) -> str:
    """One line, at most ``width`` characters."""
    flat = " / ".join(part.strip() for part in text.splitlines() if part.strip())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def content_of(row: dict[str, Any]) -> str:
    """What the recipient sees: the text, or the file name and caption; plus the failure reason."""
    if row["type"] == "text":
        content = row.get("text") or ""
    else:
        name = row.get("filename") or (row.get("media_url") or "").rsplit("/", 1)[-1]
        content = f"[{name}] {row.get('caption') or ''}".strip()
    if row.get("error_message"):
        content = f"{content}  -> {row['error_message']}"
    return shorten(content)


def via_of(row: dict[str, Any]) -> str:
    """How it was sent: a broadcast, a scheduled send, or a direct send."""
    if row.get("broadcast_id"):
        return f"broadcast #{row['broadcast_id']}"
    if row.get("scheduled_at"):
        return f"scheduled {str(row['scheduled_at'])[11:16]}"
    return "direct"


def table(rows: list[dict[str, Any]]) -> str:
    """An aligned plain-text table."""
    header = ("#", "RECIPIENT", "TYPE", "VIA", "STATUS", "TEXT / FILE")
    lines = [
        (str(row["message_id"]), row["recipient"], row["type"], via_of(row), row["status"], content_of(row))
        for row in rows
    ]
    widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header) - 1)]

    def fmt(cells: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells[:-1], widths, strict=True)) + "  " + cells[-1]

    rule = "  ".join("-" * width for width in widths) + "  " + "-" * min(CONTENT_WIDTH, 11)
    return "\n".join([fmt(header), rule, *(fmt(cells) for cells in lines)])


def totals(rows: list[dict[str, Any]]) -> str:
    """``12 messages to 9 recipients: 10 read, 1 delivered, 1 failed``."""
    counts = Counter(row["status"] for row in rows)
    recipients = len({row["recipient"] for row in rows})
    by_status = ", ".join(f"{count} {status}" for status, count in counts.most_common())
    return f"{len(rows)} messages to {recipients} recipients: {by_status}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("origin", help="the emulator's origin, e.g. http://127.0.0.1:8787")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds to wait for pending messages")
    parser.add_argument("--expect", action="append", default=[], help="text some message must contain")
    args = parser.parse_args(argv)

    handle = EmulatorHandle(args.origin)
    deadline = time.monotonic() + args.settle
    rows = rows_of(handle.ledger())
    while any(row["status"] == "pending" for row in rows) and time.monotonic() < deadline:
        time.sleep(0.5)
        rows = rows_of(handle.ledger())
    if not rows:
        print("The emulator received no messages.")
        return 1
    print(table(rows))
    print()
    print(totals(rows))
    missing = [text for text in args.expect if not any(text in (row.get("text") or "") for row in rows)]
    for text in args.expect:
        print(f"{'MISSING' if text in missing else 'found'}: a message containing {text!r}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
