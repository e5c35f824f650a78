"""indexer/config.py: flag > env > file > default, parsed once, sources shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.config import KNOBS, Config, env_name, parse_size, resolve
from indexer.errors import UsageError
from tests.conftest import run_cli


def test_precedence_flag_env_file_default(tmp_path: Path) -> None:
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text('workers = 3\ntimeout = 30\nworker-memory = "1G"\nhidden = true\n')
    env = {"INDEXER_WORKERS": "5", "INDEXER_TIMEOUT": "45"}
    cfg = resolve({"workers": "7"}, env=env, config_file=cfg_file)
    assert (cfg.workers, cfg.timeout, cfg.worker_memory, cfg.hidden, cfg.batch_rows) == (
        7,
        45.0,
        2**30,
        True,
        5000,
    )
    assert cfg.sources["workers"] == "flag"
    assert cfg.sources["timeout"] == "env INDEXER_TIMEOUT"
    assert cfg.sources["worker_memory"] == f"file {cfg_file}"
    assert cfg.sources["batch_rows"] == "default"
    with pytest.raises(AttributeError):
        cfg.workers = 1  # type: ignore[misc]  # frozen


def test_config_file_locations(tmp_path: Path) -> None:
    (tmp_path / "indexer").mkdir()
    (tmp_path / "indexer" / "config.toml").write_text("[indexer]\nepub_concurrency = 4\n")
    assert resolve(env={"XDG_CONFIG_HOME": str(tmp_path)}).epub_concurrency == 4
    other = tmp_path / "other.toml"
    other.write_text("epub_concurrency = 6\n")
    assert (
        resolve(
            env={"INDEXER_CONFIG": str(other), "XDG_CONFIG_HOME": str(tmp_path)}
        ).epub_concurrency
        == 6
    )
    assert resolve(env={"XDG_CONFIG_HOME": str(tmp_path / "none")}) == Config()


@pytest.mark.parametrize(
    ("flags", "env", "text", "message"),
    [
        ({"workers": "0"}, {}, "", "invalid workers from --workers: must be greater than 0"),
        ({}, {"INDEXER_TIMEOUT": "soon"}, "", "invalid timeout from env INDEXER_TIMEOUT"),
        ({}, {}, "worker_memory = 'lots'", "not a size"),
        ({}, {}, "colour = 'red'", "unknown setting 'colour'"),
        ({}, {}, "workers = [", "is not valid TOML"),
    ],
)
def test_bad_values_are_usage_errors(
    flags: dict[str, str], env: dict[str, str], text: str, message: str, tmp_path: Path
) -> None:
    path = None
    if text:
        path = tmp_path / "c.toml"
        path.write_text(text)
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        resolve(flags, env=env, config_file=path)


def test_sizes_and_auto() -> None:
    assert parse_size("512M") == 512 * 2**20 and parse_size("1.5GiB") == int(1.5 * 2**30)
    assert parse_size(4096) == 4096
    assert resolve({"workers": "auto", "worker_memory": "auto"}, env={}).workers is None


def test_every_knob_has_a_flag_whose_help_names_its_env_variable() -> None:
    import typer.main

    from indexer.cli import app

    index = typer.main.get_command(app).commands["index"]  # type: ignore[attr-defined]
    options = {opt: p for p in index.params for opt in p.opts}
    for knob in KNOBS:
        param = options["--" + knob.replace("_", "-")]
        assert env_name(knob) in (param.help or ""), knob


def test_indexer_config_prints_values_and_sources(tmp_path: Path) -> None:
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text("batch_rows = 123\n")
    proc = run_cli("config", "--config", cfg_file, env={"INDEXER_TIMEOUT": "9"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"# config file: {cfg_file}"
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == set(KNOBS)
    assert rows["batch_rows"].split()[1:] == ["123", "(file", f"{cfg_file})"]
    assert rows["timeout"].split()[1:] == ["9.0", "(env", "INDEXER_TIMEOUT)"]
    assert rows["workers"].split()[1].startswith("auto")
    assert rows["epub_concurrency"].endswith("(default)")
