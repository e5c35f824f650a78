"""The README documents what the CLI offers, and CI runs the README's test command."""

from __future__ import annotations

import re

from indexer.cli import app
from indexer.config import KNOBS, env_name
from tests.conftest import REPO, invoke

README = (REPO / "README.md").read_text()


def test_every_command_has_help_and_a_readme_section() -> None:
    names = [c.name or c.callback.__name__ for c in app.registered_commands]  # type: ignore[union-attr]
    assert set(names) == {"index", "search", "stats", "config"}
    for name in names:
        code, out, _ = invoke(name, "--help")
        assert code == 0 and "Usage:" in out
        assert f"### `indexer {name}" in README, f"README has no section for {name}"


def test_every_setting_is_in_the_readme() -> None:
    for knob in KNOBS:
        assert f"`{knob}`" in README and env_name(knob) in README


def test_ci_runs_exactly_the_readme_test_command() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.+?)\n```", quick_start)
    assert len(commands) == 2
    assert "indexer index fixtures" in commands[0]
    ci = (REPO / ".ci" / "run").read_text()
    assert commands[1] in ci.splitlines()


def test_exit_statuses_are_documented() -> None:
    for status in ("| 0 |", "| 1 |", "| 2 |", "| 130 |"):
        assert status in README
