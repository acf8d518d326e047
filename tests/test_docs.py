"""The README and docs/: every relative link names a file that exists and, into a Markdown
file, a heading it has (GitHub's anchors), so that moving a section never leaves a dead link."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from .conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but ``-`` and ``_`` dropped,
    spaces to ``-``."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading's anchor outside code blocks; a repeated one also as ``-1``, ``-2``, ..."""
    seen: Counter[str] = Counter()
    out = set()
    fenced = False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            a = slug(line.lstrip("#"))
            out.add(f"{a}-{seen[a]}" if seen[a] else a)
            seen[a] += 1
    return out


def test_the_anchor_rule_by_hand() -> None:
    assert slug(" Against a real Redis server: `+experiment=redis_validation`") == (
        "against-a-real-redis-server-experimentredis_validation")
    assert slug("Speed of the full model (issues 10 and 12)") == "speed-of-the-full-model-issues-10-and-12"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page: Path) -> None:
    dead = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            dead.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            dead.append(f"{target} (no such heading)")
    assert not dead, f"{page.relative_to(ROOT)}: {dead}"
