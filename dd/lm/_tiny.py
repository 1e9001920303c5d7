"""Tiny random-init bases of the paper's architectures, built offline.

Qwen3, Qwen3.5 and Gemma 4 weights small enough for CI do not exist on PyPI, so the model code
paths (padding, position ids, hybrid layers, extra hidden-state dims) are exercised on tiny
random-init models built from the real configs. Each is saved to a directory with its own
byte-level BPE tokenizer and a Jinja chat template, so it loads through exactly the same
``from_pretrained`` path as a real checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock

TINY_SEED = 1234
HIDDEN = 64
# Larger than the HF default (0.02) so that random-init logits have clear argmax margins:
# greedy decoding must then be insensitive to float noise from padding.
INIT_RANGE = 0.2
_BUILD_VERSION = "1"

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIAL_TOKENS = ["<pad>", "<bos>", "<|end|>", "<unk>", "<|user|>", "<|assistant|>", "<|system|>"]

_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "How long should I sear a steak on each side at high heat?",
    "Water boils at one hundred degrees Celsius at sea level.",
    "Write a Python function that returns the sum of a list of numbers.",
    "def add(a, b):\n    return a + b\n",
    "I am not completely sure, but I think the answer is probably forty-two.",
    "Compare the timing and temperature requirements for a perfect medium-rare result.",
    "Photosynthesis converts light energy into chemical energy in plants.",
    "The capital of France is Paris, and the capital of Japan is Tokyo.",
    "Certainly! Here is a detailed explanation with several examples and caveats.",
    "0123456789 + - * / = ( ) [ ] { } < > ! ? , . ; : ' \"",
]

TINY_NAMES = ("tiny-llama", "tiny-qwen3", "tiny-qwen3.5", "tiny-gemma3", "tiny-gemma4")


def build_tokenizer(directory: Path | None = None) -> Any:
    """Train a small byte-level BPE tokenizer and wrap it with a chat template.

    Args:
        directory: where to ``save_pretrained`` it; not saved when None.

    Returns:
        A ``PreTrainedTokenizerFast`` with bos/eos/pad set and ``chat_template``.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<|end|>",
        pad_token="<pad>",
        unk_token="<unk>",
        additional_special_tokens=["<|user|>", "<|assistant|>", "<|system|>"],
    )
    fast.chat_template = CHAT_TEMPLATE
    if directory is not None:
        fast.save_pretrained(directory)
    return fast


def _common(vocab: int, tok: Any) -> dict[str, Any]:
    return {
        "vocab_size": vocab,
        "hidden_size": HIDDEN,
        "intermediate_size": 2 * HIDDEN,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "max_position_embeddings": 2048,
        "initializer_range": INIT_RANGE,
        "pad_token_id": tok.pad_token_id,
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "tie_word_embeddings": False,
    }


def _llama(vocab: int, tok: Any) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(**_common(vocab, tok), num_hidden_layers=2)


def _qwen3(vocab: int, tok: Any) -> Any:
    from transformers import Qwen3Config

    return Qwen3Config(**_common(vocab, tok), num_hidden_layers=2)


def _qwen3_5(vocab: int, tok: Any) -> Any:
    from transformers import Qwen3_5TextConfig

    return Qwen3_5TextConfig(
        **_common(vocab, tok),
        num_hidden_layers=4,
        layer_types=["linear_attention"] * 3 + ["full_attention"],
        linear_conv_kernel_dim=4,
        linear_key_head_dim=16,
        linear_value_head_dim=16,
        linear_num_key_heads=2,
        linear_num_value_heads=4,
    )


def _gemma3(vocab: int, tok: Any) -> Any:
    from transformers import Gemma3TextConfig

    return Gemma3TextConfig(
        **_common(vocab, tok),
        num_hidden_layers=3,
        sliding_window=16,
        layer_types=["sliding_attention", "sliding_attention", "full_attention"],
    )


def _gemma4(vocab: int, tok: Any) -> Any:
    from transformers import Gemma4TextConfig

    return Gemma4TextConfig(
        **_common(vocab, tok),
        num_hidden_layers=4,
        sliding_window=16,
        layer_types=["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
        vocab_size_per_layer_input=vocab,
        hidden_size_per_layer_input=16,
        num_kv_shared_layers=2,
    )


_CONFIGS: dict[str, Callable[[int, Any], Any]] = {
    "tiny-llama": _llama,
    "tiny-qwen3": _qwen3,
    "tiny-qwen3.5": _qwen3_5,
    "tiny-gemma3": _gemma3,
    "tiny-gemma4": _gemma4,
}


def build_tiny_base(name: str, directory: str | Path) -> Path:
    """Build (once) a tiny random-init base and save it like a real checkpoint.

    Safe under ``pytest -n`` workers: a file lock makes one process build it; the others wait
    and reuse the directory. A ``dd_tiny.json`` marker written last marks a complete build.

    Args:
        name: one of ``TINY_NAMES``.
        directory: target folder (model + tokenizer files go directly in it).

    Returns:
        The directory, ready for ``from_pretrained``.
    """
    if name not in _CONFIGS:
        raise KeyError(f"unknown tiny base {name!r}; known: {', '.join(TINY_NAMES)}")
    directory = Path(directory)
    marker = directory / "dd_tiny.json"
    expected = {"name": name, "build_version": _BUILD_VERSION, "seed": TINY_SEED}
    if marker.exists() and json.loads(marker.read_text()) == expected:
        return directory
    directory.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(directory) + ".lock"):
        if marker.exists() and json.loads(marker.read_text()) == expected:
            return directory
        import torch
        from transformers import AutoModelForCausalLM

        directory.mkdir(parents=True, exist_ok=True)
        tok = build_tokenizer(directory)
        vocab = len(tok)
        config = _CONFIGS[name](vocab, tok)
        torch.manual_seed(TINY_SEED)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.generation_config.eos_token_id = tok.eos_token_id
        model.generation_config.pad_token_id = tok.pad_token_id
        model.save_pretrained(directory)
        marker.write_text(json.dumps(expected))
    return directory
