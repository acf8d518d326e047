"""The README and docs/: every relative link names a file that exists and, into a Markdown
file, a heading it has (GitHub's anchors), so that moving a section never leaves a dead link;
and a README section that is a docs page's copy stays its copy."""

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


# README sections kept as a copy of a docs page (the page's links relative to docs/): an edit of
# one must be made in the other (docs/placement.md had lost a paragraph its copy kept). Where
# only part is shared, each side's copy ends before the heading named for it (the README's
# Metadata section goes on to the Redis validation, the page to its own Speed notes).
COPIES = {
    "## Placement and eviction policies, with OPT as the yardstick": ("docs/placement.md", None, None),
    "## Metadata indexes: the study's benchmark in simulation": (
        "docs/metadata_bench.md", "### Against a real Redis server", "### Speed"),
}


def readme_section(heading: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(heading + "\n")
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end >= 0 else len(text)]


def upto(text: str, stop: str | None) -> str:
    """``text`` before the line that starts with ``stop`` (all of it when None)."""
    if stop is None:
        return text
    at = text.find("\n" + stop)
    assert at >= 0, f"no heading {stop!r}"
    return text[:at]


@pytest.mark.parametrize("heading", sorted(COPIES))
def test_a_readme_section_copied_from_a_docs_page_says_the_same(heading: str) -> None:
    import difflib

    page_file, readme_stop, page_stop = COPIES[heading]
    readme = re.sub(r"(\[|\]\()docs/", r"\1", upto(readme_section(heading), readme_stop))
    section = readme.strip().splitlines()
    page = upto((ROOT / page_file).read_text(), page_stop).strip().splitlines()
    diff = list(difflib.unified_diff(page, section, page_file, "README.md", lineterm="", n=0))
    assert not diff, "\n".join(diff[:20])
