"""A campaign file with an alias bomb is refused in one line, fast and small."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.helpers.child import run_measured

KZMAIL = Path(sys.executable).with_name("kzmail")


def _alias_bomb(depth: int) -> str:
    """The classic nested-alias file: each level is nine aliases of the one above."""
    lines = ['a0: &a0 "' + "x" * 400 + '"']
    for level in range(1, depth + 1):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_in_one_line_fast_and_small(project: Path) -> None:
    campaign = project / "campaigns/kasachstan.yaml"
    campaign.write_text(campaign.read_text(encoding="utf-8") + _alias_bomb(9), encoding="utf-8")
    assert campaign.stat().st_size < 8_000
    run = run_measured([str(KZMAIL), "check", str(campaign)], cwd=project, timeout=30)
    assert not run.killed
    assert run.returncode in (1, 2), run.stderr  # check exits 1 on every problem
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert "kasachstan.yaml" in lines[0]
    assert "alias" in lines[0]
    assert run.seconds < 10
    assert run.peak_rss_mb < 500


def test_a_single_alias_names_its_line(project: Path) -> None:
    campaign = project / "campaigns/kasachstan.yaml"
    text = campaign.read_text(encoding="utf-8")
    campaign.write_text(text + "extra: &one 1\nagain: *one\n", encoding="utf-8")
    line = len(text.splitlines()) + 2
    run = run_measured([str(KZMAIL), "check", str(campaign)], cwd=project, timeout=30)
    assert run.returncode in (1, 2)
    assert f":{line}" in run.stderr, run.stderr
