"""Print a code block of README.md by name, so tests and CI run the README's text as written.

A block is named by an HTML comment on the line before its opening fence::

    <!-- readme-block: dags-test -->
    ```bash
    ...
    ```

Usage: ``python scripts/readme_block.py dags-test [README.md]``. Standard library only, so it
runs in any venv (CI's clean venv has no checkout on its path).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
_MARKER = re.compile(r"^<!-- readme-block: (?P<name>[\w.-]+) -->\s*$")


def blocks(readme: Path = README) -> dict[str, str]:
    """Every named block of ``readme``: name -> the code between its fences (ending with a newline)."""
    lines = readme.read_text(encoding="utf-8").splitlines()
    found: dict[str, str] = {}
    for index, line in enumerate(lines):
        marker = _MARKER.match(line)
        if not marker:
            continue
        name = marker.group("name")
        if index + 1 >= len(lines) or not lines[index + 1].startswith("```"):
            raise ValueError(f"README block {name!r}: the line after its marker must open a code fence")
        end = next((j for j in range(index + 2, len(lines)) if lines[j].startswith("```")), None)
        if end is None:
            raise ValueError(f"README block {name!r}: its code fence is never closed")
        if name in found:
            raise ValueError(f"README block {name!r} is named twice")
        found[name] = "\n".join(lines[index + 2 : end]) + "\n"
    return found


def block(name: str, readme: Path = README) -> str:
    """The code of README block ``name``."""
    found = blocks(readme)
    if name not in found:
        raise KeyError(f"README has no block {name!r} (it has: {', '.join(sorted(found)) or 'none'})")
    return found[name]


def main(argv: list[str]) -> int:
    """Print one block; exit 2 on a wrong name or usage."""
    if len(argv) not in (1, 2):
        print("usage: readme_block.py NAME [README.md]", file=sys.stderr)
        return 2
    try:
        sys.stdout.write(block(argv[0], Path(argv[1]) if len(argv) == 2 else README))
    except (KeyError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
