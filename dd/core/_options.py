"""The suite's options (DESIGN.md contract 3), each also settable through a `DD_*` variable.

Kept apart from the plugin so that library code and the CLI read the same settings without
importing pytest.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

# option dest -> (flag, environment variable, help)
OPTIONS = {
    "dd_artifacts": ("--dd-artifacts", "DD_ARTIFACTS",
                     "directory holding the paper's released files (eval/, phase0_audit/)"),
    "dd_cache": ("--dd-cache", "DD_CACHE",
                 "cache directory for responses, features and judge replies (default ~/.cache/dd)"),
    "dd_model": ("--dd-model", "DD_MODEL",
                 "NAME=PATH: where a base's weights are (repeatable; DD_MODEL is comma-separated)"),
    "dd_judge_base_url": ("--dd-judge-base-url", "DD_JUDGE_BASE_URL",
                          "OpenAI-compatible judge endpoint, e.g. http://127.0.0.1:8000/v1"),
    "dd_judge_model": ("--dd-judge-model", "DD_JUDGE_MODEL", "judge model name at that endpoint"),
    "dd_report": ("--dd-report", "DD_REPORT", "write the dd-report/1 JSON to this path"),
    "dd_figures": ("--dd-figures", "DD_FIGURES", "write the AUC-collapse and PCA figures (PNG) to this directory"),
    "dd_features": ("--dd-features", "DD_FEATURES", "run the protocol on DIR/train.npz and DIR/fresh.npz (contract 2)"),
    "dd_html": ("--dd-html", "DD_HTML", "write the report as one self-contained HTML page to this path"),
    "dd_table": ("--dd-table", "DD_TABLE", "the end-of-run table: 'compact' (grouped by arc, 120 columns) or 'full'"),
    "dd_claim": ("--dd-claim", "DD_CLAIM",
                 "run one claim file (TOML) end to end through the effect protocol (claims/pipeline)"),
    "dd_gen_backend": ("--dd-gen-backend", "DD_GEN_BACKEND",
                       "where generation runs: 'hf' (in-process, default), 'vllm', or 'openai=URL[#MODEL]'; "
                       "takes precedence over a claim file's [generation] backend"),
}
FLAGS = {
    "dd_offline": ("--dd-offline", "DD_OFFLINE",
                   "a cache miss that would need a model or judge is an error, never a call"),
    "dd_slow": ("--dd-slow", "DD_SLOW", "also run tests marked slow (full sets, real-model training)"),
    "dd_allow_code_exec": ("--dd-allow-code-exec", "DD_ALLOW_CODE_EXEC",
                           "allow running model-written code in the sandbox"),
}


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def parse_models(values: list[str]) -> dict[str, Path]:
    """`NAME=PATH` strings to a mapping; a malformed one is an error naming it."""
    out = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--dd-model expects NAME=PATH, got {value!r}")
        out[name.strip()] = Path(path.strip())
    return out


@dataclass(frozen=True)
class Settings:
    artifacts: Path | None = None
    cache: Path | None = None
    models: dict[str, Path] = field(default_factory=dict)
    judge_base_url: str | None = None
    judge_model: str | None = None
    report: Path | None = None
    figures: Path | None = None
    features: Path | None = None
    html: Path | None = None
    claim: Path | None = None
    table: str = "compact"
    gen_backend: str | None = None  # None: not chosen here (a claim file may choose; else hf)
    offline: bool = False
    slow: bool = False
    allow_code_exec: bool = False

    @property
    def cache_root(self) -> Path:
        """The cache folder, as ``resolve_cache_root`` finds it (``--dd-cache`` first)."""
        return resolve_cache_root(self.cache)


def resolve_cache_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Where the cache lives: ``explicit`` (``--dd-cache``), else ``$DD_CACHE``, else ``~/.cache/dd``.

    The only reader of ``DD_CACHE``: the plugin's settings, ``Cache()``, the base resolver and
    ``dd cache`` all ask here, so they cannot disagree about where an entry is.
    """
    chosen = explicit or os.environ.get(OPTIONS["dd_cache"][1])
    return Path(chosen).expanduser() if chosen else Path.home() / ".cache" / "dd"


def _table(value: str | None) -> str:
    if value in (None, "compact", "full"):
        return value or "compact"
    raise ValueError(f"--dd-table is 'compact' or 'full', not {value!r}")


def check_gen_backend(value: str, what: str = "--dd-gen-backend") -> str:
    """A generation backend's name, checked where given so a typo fails at once (`dd.lm.get_backend` builds it)."""
    if value in ("hf", "vllm") or (value.startswith("openai=") and len(value) > len("openai=")):
        return value
    raise ValueError(f"{what} is 'hf', 'vllm' or 'openai=URL[#MODEL]', not {value!r}")


def resolve_settings(getoption) -> Settings:
    """Settings from `getoption(dest)` (a command line), falling back to the environment."""

    def value(dest):
        flag, env, _ = OPTIONS[dest]
        got = getoption(dest)
        return got if got else os.environ.get(env) or None

    model_values = list(getoption("dd_model") or [])
    if not model_values and os.environ.get("DD_MODEL"):
        model_values = [v for v in os.environ["DD_MODEL"].split(",") if v.strip()]
    path = lambda v: Path(v) if v else None  # noqa: E731
    return Settings(
        artifacts=path(value("dd_artifacts")),
        cache=path(getoption("dd_cache")),  # $DD_CACHE is read by resolve_cache_root alone
        models=parse_models(model_values),
        judge_base_url=value("dd_judge_base_url"),
        judge_model=value("dd_judge_model"),
        report=path(value("dd_report")),
        figures=path(value("dd_figures")),
        features=path(value("dd_features")),
        html=path(value("dd_html")),
        claim=path(value("dd_claim")),
        table=_table(value("dd_table")),
        gen_backend=None if value("dd_gen_backend") is None else check_gen_backend(value("dd_gen_backend")),
        **{dest[3:]: bool(getoption(dest)) or env_flag(FLAGS[dest][1]) for dest in FLAGS},
    )
