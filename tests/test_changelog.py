"""Version and CHANGELOG follow Airflow's provider conventions and agree with each other.

The version lives in ``airflow_provider_waslah/__init__.py``; ``get_provider_info()["versions"]``
lists it first, then every earlier version (newest first, like a provider.yaml); CHANGELOG.rst
has one section per version, in the same order, each with Airflow's subsection names.
"""

from __future__ import annotations

import re
from pathlib import Path

from packaging.version import Version

import airflow_provider_waslah
from airflow_provider_waslah import get_provider_info

CHANGELOG = Path(__file__).resolve().parent.parent / "CHANGELOG.rst"
#: A version heading: the version, then a line of dots as long as it.
HEADING = re.compile(r"^(?P<version>\d+\.\d+\.\d+)\n(?P<rule>\.+)$", re.MULTILINE)
SUBSECTIONS = ("Breaking changes", "Features", "Bug Fixes", "Misc", "Doc-only")


def sections() -> list[tuple[str, str]]:
    text = CHANGELOG.read_text()
    found = list(HEADING.finditer(text))
    for match in found:
        assert len(match["rule"]) == len(match["version"]), f"underline of {match['version']}"
    ends = [m.start() for m in found[1:]] + [len(text)]
    return [(m["version"], text[m.end() : end]) for m, end in zip(found, ends, strict=True)]


def test_the_changelog_lists_the_provider_versions_newest_first() -> None:
    versions = [version for version, _ in sections()]
    assert versions == get_provider_info()["versions"]
    assert versions[0] == airflow_provider_waslah.__version__
    assert versions == sorted(versions, key=Version, reverse=True)


def test_each_version_says_what_changed_under_airflows_headings() -> None:
    for version, body in sections():
        headings = re.findall(r"^(\S[^\n]*)\n~+$", body, re.MULTILINE)
        assert set(headings) <= set(SUBSECTIONS), (version, headings)
        assert "* ``" in body or "Initial version" in body, version


def test_the_current_version_covers_this_work() -> None:
    _, body = sections()[0]
    for needle in ("waslah_airflow", "base URL", "twine check", "WaslahBroadcastOperator", "emulator"):
        assert needle in body, needle
