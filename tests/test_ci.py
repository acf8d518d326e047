"""The CI contract: every skip that hides a missing resource has a KVSIM_REQUIRE_* switch,
.ci/run turns every switch on and runs the deterministic hypothesis profile."""

from __future__ import annotations

import re

from hypothesis import settings

from .conftest import RESOURCES, ROOT

CI_RUN = ROOT / ".ci" / "run"


def test_ci_sets_every_require_switch_and_the_ci_profile() -> None:
    text = CI_RUN.read_text()
    exported = set(re.findall(r"^export (KVSIM_REQUIRE_\w+)=1", text, flags=re.M))
    assert set(RESOURCES) <= exported, f"not set by .ci/run: {sorted(set(RESOURCES) - exported)}"
    assert re.search(r"^export KVSIM_HYPOTHESIS_PROFILE=ci\b", text, flags=re.M)


def test_the_ci_profile_is_deterministic() -> None:
    ci = settings.get_profile("ci")
    assert ci.derandomize and ci.database is None


def test_no_test_skips_on_a_resource_without_a_switch() -> None:
    """Skips go through conftest's require()/require_resource()/require_module(), which fail
    instead when the resource's switch is on; a bare pytest.skip or importorskip would hide a
    missing resource from CI."""
    bare = re.compile(r"pytest\.skip\(|importorskip\(|mark\.skipif\(|mark\.skip\(")
    offenders = [
        f"{p.name}:{i}"
        for p in sorted((ROOT / "tests").glob("*.py"))
        if p.name != "conftest.py"
        for i, line in enumerate(p.read_text().splitlines(), start=1)
        if bare.search(line)
    ]
    assert not offenders, f"skips without a KVSIM_REQUIRE_* switch: {offenders}"


def test_every_switch_a_test_reads_is_declared() -> None:
    """A KVSIM_REQUIRE_* switch read anywhere in the tests is a resource (.ci/run sets it),
    never an undeclared environment check."""
    used = {m for p in (ROOT / "tests").glob("*.py") for m in re.findall(r"KVSIM_REQUIRE_\w+", p.read_text())}
    assert used - set(RESOURCES) == set()
