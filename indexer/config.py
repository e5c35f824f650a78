"""Every knob, parsed once into a frozen ``Config``, with where each value came from.

Why this module exists: options arrive from four places and must resolve the
same way everywhere. Precedence: command-line flag > ``INDEXER_*`` environment
variable > TOML config file > built-in default. The file is ``--config PATH``,
else ``$INDEXER_CONFIG``, else ``$XDG_CONFIG_HOME/indexer/config.toml``
(``~/.config/indexer/config.toml``) when it exists. ``indexer config`` prints
the result with each value's source.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from indexer.errors import UsageError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(value: Any) -> int:
    """'2G', '512M', '1.5GiB', '1048576' -> bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = _SIZE.match(str(value))
    if not m:
        raise ValueError(f"not a size: {value!r} (try 512M or 2G)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def format_size(n: int) -> str:
    for unit, size in (("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if n >= size:
            return f"{n / size:.1f}{unit}".replace(".0" + unit, unit)
    return str(n)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    s = str(value).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _auto(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def parse_or_auto(value: Any) -> Any:
        if value is None or str(value).strip().lower() == "auto":
            return None
        return parse(value)

    return parse_or_auto


def _positive(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        v = parse(value)
        if v is not None and v <= 0:
            raise ValueError(f"must be greater than 0, not {value!r}")
        return v

    return check


def _not_negative(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        v = parse(value)
        if v < 0:
            raise ValueError(f"must be 0 or more, not {value!r}")
        return v

    return check


def _patterns(value: Any) -> tuple[str, ...]:
    """Gitignore patterns: a list (flags, TOML) or one string (the
    environment), its patterns one per line or separated by commas."""
    if isinstance(value, (list, tuple)):
        items = [str(v) for v in value]
    else:
        items = str(value).replace(",", "\n").splitlines()
    return tuple(p.strip() for p in items if p.strip())


def _ocr_mode(value: Any) -> str:
    mode = str(value).strip().lower()
    if mode not in ("never", "auto", "always"):
        raise ValueError(f"{value!r} is not never, auto or always")
    return mode


def _ocr_languages(value: Any) -> str:
    langs = [x.strip() for x in str(value).replace(",", "+").split("+") if x.strip()]
    if not langs or not all(x.replace("_", "").isalnum() and x.isascii() for x in langs):
        raise ValueError(f"{value!r} is not a list of Tesseract languages such as eng+deu")
    return "+".join(langs)


def _path(value: Any) -> Path:
    return Path(os.path.expanduser(str(value)))


# name -> (parser, help). Defaults are the dataclass defaults below.
KNOBS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "db": (_path, "the index file"),
    "workers": (_positive(_auto(int)), "worker processes (auto: from cores, load and memory)"),
    "epub_concurrency": (_positive(int), "EPUB tasks in flight at most"),
    "timeout": (
        _positive(float),
        "seconds without a page read (a hang); per 100 pages in all",
    ),
    "worker_memory": (_positive(_auto(parse_size)), "memory cap per worker (auto: RAM share)"),
    "memory_reserve": (_auto(parse_size), "memory kept free; below it the governor holds back"),
    "batch_rows": (_positive(int), "rows per writer transaction"),
    "batch_seconds": (_positive(float), "seconds per writer transaction at most"),
    "small_file_kb": (_positive(int), "files smaller than this are grouped into one task"),
    "hidden": (_bool, "also index hidden files and directories"),
    "follow_symlinks": (_bool, "follow links to files outside the folders being indexed"),
    "retry_errors": (_bool, "retry files that failed before even if unchanged"),
    "exclude": (_patterns, "gitignore patterns of files and folders not to index"),
    "progress_every": (_not_negative(float), "seconds between progress lines off a terminal"),
    "ocr": (_ocr_mode, "recognise scanned pages: never, auto (scans with no text), always"),
    "ocr_lang": (_ocr_languages, "Tesseract's languages for OCR, e.g. eng+deu"),
    "ocr_dpi": (_positive(int), "resolution pages are rendered at for OCR"),
    "ocr_timeout": (_positive(float), "seconds one page's OCR may take"),
}


@dataclass(frozen=True)
class Config:
    db: Path = Path("index.db")
    workers: int | None = None
    epub_concurrency: int = 2
    timeout: float = 60.0
    worker_memory: int | None = None
    memory_reserve: int | None = None
    batch_rows: int = 5000
    batch_seconds: float = 2.0
    small_file_kb: int = 128
    hidden: bool = False
    follow_symlinks: bool = False
    retry_errors: bool = False
    exclude: tuple[str, ...] = ()
    progress_every: float = 0.0  # 0: no progress lines
    ocr: str = "never"
    ocr_lang: str = "eng"
    ocr_dpi: int = 300
    ocr_timeout: float = 120.0
    # knob -> "flag", "env INDEXER_X", "file PATH" or "default"
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    config_file: Path | None = field(default=None, compare=False)


def env_name(knob: str) -> str:
    return "INDEXER_" + knob.upper()


def default_config_file(env: Mapping[str, str]) -> Path | None:
    if env.get("INDEXER_CONFIG"):
        return Path(os.path.expanduser(env["INDEXER_CONFIG"]))
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    candidate = Path(base) / "indexer" / "config.toml"
    try:
        return candidate if candidate.is_file() else None
    except OSError:  # an unreadable home directory: no config file
        return None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise UsageError(f"config file {path} does not exist") from None
    except OSError as e:
        raise UsageError(f"cannot read config file {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"config file {path} is not valid TOML: {e}") from None
    if isinstance(data.get("indexer"), dict):  # allow an [indexer] table
        data = data["indexer"]
    out = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in KNOBS:
            raise UsageError(
                f"config file {path}: unknown setting {key!r}",
                hint="known settings: " + ", ".join(KNOBS),
            )
        out[name] = value
    return out


def resolve(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
) -> Config:
    """Build the Config. ``flags`` holds only options given on the command line
    (None values are ignored)."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    env = os.environ if env is None else env
    path = Path(os.path.expanduser(str(config_file))) if config_file else default_config_file(env)
    from_file = _read_file(path) if path is not None else {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, (parse, _help) in KNOBS.items():
        if name in flags:
            raw, source = flags[name], "flag"
        elif env.get(env_name(name), "") != "":
            raw, source = env[env_name(name)], f"env {env_name(name)}"
        elif name in from_file:
            raw, source = from_file[name], f"file {path}"
        else:
            sources[name] = "default"
            continue
        try:
            values[name] = parse(raw)
        except (TypeError, ValueError) as e:
            where = {"flag": f"--{name.replace('_', '-')}"}.get(source, source)
            raise UsageError(f"invalid {name} from {where}: {e}") from None
        sources[name] = source
    return Config(**values, sources=sources, config_file=path)


def describe(config: Config) -> list[tuple[str, str, str]]:
    """(name, value, source) rows for ``indexer config``."""
    from indexer import resources

    rows = []
    for f in fields(Config):
        if f.name not in KNOBS:
            continue
        value = getattr(config, f.name)
        if f.name == "workers" and value is None:
            shown = f"auto ({resources.size_pool(None, config.memory_reserve).workers})"
        elif f.name == "worker_memory" and value is None:
            shown = f"auto ({format_size(resources.default_worker_memory())})"
        elif f.name == "memory_reserve" and value is None:
            shown = f"auto ({format_size(resources.default_reserve())})"
        elif f.name in ("worker_memory", "memory_reserve"):
            shown = format_size(value)
        else:
            shown = str(value)
        rows.append((f.name, shown, config.sources.get(f.name, "default")))
    return rows
