"""The README documents what the CLI offers (every command, every option),
links the design pages in docs/, and CI runs the README's test command and
the linters."""

from __future__ import annotations

import re

import typer.main

from indexer.cli import app
from indexer.config import KNOBS, env_name
from tests.conftest import REPO, invoke

README = (REPO / "README.md").read_text()


def test_every_command_has_help_and_a_readme_section() -> None:
    names = [c.name or c.callback.__name__ for c in app.registered_commands]  # type: ignore[union-attr]
    assert set(names) == {
        "index",
        "search",
        "show",
        "open",
        "stats",
        "serve",
        "config",
        "forget",
        "watch",
    }
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


def test_every_option_of_every_command_is_in_its_readme_section() -> None:
    group = typer.main.get_command(app)
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        start = README.index(f"### `indexer {name}")
        following = re.search(r"\n#{2,3} ", README[start + 4 :])
        section = README[start : start + 4 + following.start()] if following else README[start:]
        assert command.help, f"indexer {name} has no help text"
        for param in command.params:
            if param.param_type_name != "option":
                continue
            assert param.help, f"indexer {name} {param.opts[0]} has no help text"
            for opt in [*param.opts, *param.secondary_opts]:
                if opt.startswith("--"):
                    # in the command's own section, or in the settings table
                    assert f"`{opt}" in section or f"`{opt}` /" in README, (
                        f"indexer {name} {opt} is not in the README"
                    )


def test_the_design_pages_exist_and_the_readme_links_them() -> None:
    for page in ("architecture", "pool", "incremental", "performance", "search"):
        path = REPO / "docs" / f"{page}.md"
        assert path.is_file() and path.read_text().startswith("# "), path
        assert f"(docs/{page}.md)" in README
    for link in re.findall(r"\]\((docs/[^)#]+)", README):
        assert (REPO / link).is_file(), f"README links {link}, which does not exist"


def test_ci_runs_the_linters() -> None:
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    for command in ("ruff check .", "ruff format --check .", "mypy --strict indexer"):
        assert any(line.endswith(command) for line in ci), command


def test_index_help_shows_each_settings_environment_variable() -> None:
    """`indexer index --help` names each setting's variable as it is
    written ("[env: INDEXER_X ...]": typer's rich markup would take the
    brackets for a style and drop them)."""
    code, out, _ = invoke("index", "--help")
    assert code == 0
    flat = " ".join(out.split())
    for knob in KNOBS:
        assert f"[env: {env_name(knob)}" in flat, knob
    assert "default: auto]" in flat
