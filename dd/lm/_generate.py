"""Batched greedy generation with left padding and explicit position ids.

Responses are the first cached product of the pipeline, so generation must not depend on how
prompts are batched: prompts are left-padded, ``position_ids`` come from the attention mask's
cumulative sum (a padded row sees the same positions as the row alone), and decoding is plain
argmax with a KV cache. Each item records its token ids, text, finish reason and ``n_predict``.

An arm of a comparison is the base under an operator (``dd.operators``), passed as the object
itself: its ``kind`` decides what generation does with it (a hook or an adapter is applied for the
run and removed after it, a prompt operator's ``messages`` replace the user turn, a read-out is
refused), and its ``key()`` enters the cache key. So a key can only name what was actually run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from dd.core import Cache, CacheKey, model_run_key, sha256_json
from dd.core import progress as progress_bar

if TYPE_CHECKING:
    from dd.lm._backends import GenerationBackend
    from dd.lm._models import LazyBase, LoadedBase

FinishReason = Literal["eos", "length"]

#: Prompt format for bases without a chat template (e.g. Gemma 3 270M base).
PLAIN_PROMPT = "Question: {prompt}\nAnswer:"
#: Pair format for bases without a chat template: the prompt format, a space, the response.
PLAIN_PAIR = PLAIN_PROMPT + " {response}"
#: The operator key part of the untouched base. ``Frozen().key()`` is the same string, and so is
#: every entry cached before operators were passed as objects, so those entries stay valid.
UNTOUCHED = "frozen"


@dataclass(frozen=True)
class GenerationConfig:
    """Greedy decoding settings; all of them are cache-key parts.

    Attributes:
        n_predict: maximum new tokens per item.
        batch_size: prompts per forward pass (does not change results).
        chat: render prompts with the chat template (falls back to ``PLAIN_PROMPT``
            when the tokenizer has none).
        enable_thinking: passed to templates that read it (Qwen3); None = template default.
    """

    n_predict: int = 512
    batch_size: int = 8
    chat: bool = True
    enable_thinking: bool | None = None

    def key_parts(self) -> dict[str, Any]:
        """Key parts; ``batch_size`` is left out because results do not depend on it."""
        d = asdict(self)
        d.pop("batch_size")
        return {f"gen.{k}": v for k, v in d.items()}


@dataclass(frozen=True)
class Generation:
    """One generated response."""

    prompt: str
    token_ids: tuple[int, ...]
    text: str
    finish_reason: FinishReason
    n_predict: int
    n_prompt_tokens: int

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["token_ids"] = list(self.token_ids)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Generation:
        return cls(**{**d, "token_ids": tuple(d["token_ids"])})


def _template_kwargs(enable_thinking: bool | None) -> dict[str, Any]:
    return {} if enable_thinking is None else {"enable_thinking": enable_thinking}


def uses_chat_template(tokenizer: Any, chat: bool = True) -> bool:
    """Whether prompts are rendered with the tokenizer's chat template."""
    return bool(chat and getattr(tokenizer, "chat_template", None))


def _arm_kind(operator: Any | None) -> str:
    """The kind of the arm ``operator`` makes: ``identity`` for None; a read-out is refused.

    Raises:
        TypeError: for a read-out operator (it reads features and generates nothing), or for
            anything that is not an operator (a name string, say: the key must come from the
            object that runs).
    """
    if operator is None:
        return "identity"
    kind = getattr(operator, "kind", None)
    if kind == "readout":
        raise TypeError(f"{operator.key()} is a read-out operator: it reads the features of responses and "
                        "generates none; generate with operator=None and fit the read-out on their features")
    if kind not in ("identity", "hook", "adapter", "prompt"):
        raise TypeError(f"operator must be a dd.operators Operator of kind identity, hook, adapter or prompt, "
                        f"got {operator!r}")
    return kind


def _arm_key(operator: Any | None) -> str:
    """The operator part of a cache key, from the operator itself (``UNTOUCHED`` for None)."""
    _arm_kind(operator)
    return UNTOUCHED if operator is None else operator.key()


def _messages(prompt: str, tokenizer: Any | None, operator: Any) -> list[dict[str, str]]:
    """The conversation of an arm: a prompt operator's, else the prompt as one user turn.

    ``tokenizer`` None asks for the plain format, which holds one user turn.
    """
    if _arm_kind(operator) == "prompt":
        return operator.messages(prompt, tokenizer)
    return [{"role": "user", "content": prompt}]


def render_prompt(tokenizer: Any, prompt: str, *, chat: bool = True, enable_thinking: bool | None = None,
                  operator: Any | None = None) -> list[int]:
    """Token ids of the arm's conversation plus the generation prompt (or the plain fallback).

    A prompt ``operator`` supplies the conversation; other kinds leave the prompt as it is.

    Raises:
        ValueError: when a prompt operator gives the plain format anything but one user turn.
    """
    if uses_chat_template(tokenizer, chat):
        text = tokenizer.apply_chat_template(
            _messages(prompt, tokenizer, operator),
            add_generation_prompt=True,
            tokenize=False,
            **_template_kwargs(enable_thinking),
        )
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    turns = _messages(prompt, None, operator)
    if [t["role"] for t in turns] != ["user"]:
        raise ValueError(f"the plain prompt format holds one user turn; {_arm_key(operator)} gave "
                         f"{[t['role'] for t in turns]}")
    return list(tokenizer(PLAIN_PROMPT.format(prompt=turns[0]["content"]), add_special_tokens=True)["input_ids"])


@contextmanager
def _applied(base: LoadedBase, operator: Any) -> Iterator[None]:
    """A hook or adapter operator edits the model for the block only, even when the block raises."""
    if _arm_kind(operator) not in ("hook", "adapter"):
        yield
        return
    handle = operator.apply(base)
    try:
        yield
    finally:
        handle.remove()


def left_pad(seqs: Sequence[Sequence[int]], pad_id: int, device: Any = None) -> tuple[Any, Any, Any]:
    """Left-pad token lists; returns (input_ids, attention_mask, position_ids) tensors.

    Position ids are the mask's cumulative sum minus one, so each row's real tokens get
    positions 0..n-1 whatever the padding.
    """
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        if len(s):
            ids[i, width - len(s) :] = torch.tensor(list(s), dtype=torch.long)
            mask[i, width - len(s) :] = 1
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), pos.to(device)


def _batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Index batches of similar length (longest first) to limit padding."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def generate(
    base: LoadedBase,
    prompts: Sequence[str],
    config: GenerationConfig = GenerationConfig(),
    *,
    operator: Any | None = None,
    progress: bool = True,
) -> list[Generation]:
    """Greedy-decode a response for each prompt, batched by length.

    Args:
        base: a loaded base.
        prompts: user prompts (rendered with the chat template or the plain fallback).
        config: decoding settings.
        operator: the arm's operator (not applied by the caller): see the module docstring.
        progress: allow a bar on the user's terminal (`dd.core.progress` decides whether one shows).

    Raises:
        TypeError: for a read-out operator, or an ``operator`` that is not an operator.

    Returns:
        One ``Generation`` per prompt, in input order.
    """
    import torch

    tok, model = base.tokenizer, base.model
    eos = base.eos_token_ids
    rendered = [render_prompt(tok, p, chat=config.chat, enable_thinking=config.enable_thinking, operator=operator)
                for p in prompts]
    results: list[Generation | None] = [None] * len(prompts)
    bar = progress_bar(len(prompts), f"generate {base.name}", enabled=progress)
    with _applied(base, operator), torch.inference_mode():
        for batch in _batches([len(r) for r in rendered], max(1, config.batch_size)):
            outs = _generate_batch(
                model, [rendered[i] for i in batch], base.pad_token_id, eos, config.n_predict, base.device
            )
            for i, (ids, reason) in zip(batch, outs, strict=True):
                body = list(ids[:-1]) if reason == "eos" else list(ids)
                results[i] = Generation(
                    prompt=prompts[i],
                    token_ids=tuple(ids),
                    text=tok.decode(body, skip_special_tokens=False),
                    finish_reason=reason,
                    n_predict=config.n_predict,
                    n_prompt_tokens=len(rendered[i]),
                )
            bar.update(len(batch))
    bar.close()
    return [r for r in results if r is not None]


def _generate_batch(
    model: Any, seqs: list[list[int]], pad_id: int, eos: frozenset[int], n_predict: int, device: Any
) -> list[tuple[list[int], FinishReason]]:
    import torch

    ids, mask, pos = left_pad(seqs, pad_id, device)
    n = len(seqs)
    tokens: list[list[int]] = [[] for _ in range(n)]
    done = [False] * n
    reasons: list[FinishReason] = ["length"] * n
    if n_predict <= 0:
        return list(zip(tokens, reasons, strict=True))
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1)
    past = _cache_of(out)
    for step in range(n_predict):
        nxt = out.logits[:, -1, :].float().argmax(-1)
        for i, t in enumerate(nxt.tolist()):
            if done[i]:
                continue
            tokens[i].append(t)
            if t in eos:
                done[i], reasons[i] = True, "eos"
        if all(done) or step == n_predict - 1:
            break
        feed = torch.where(torch.tensor(done, device=nxt.device), torch.full_like(nxt, pad_id), nxt)
        mask = torch.cat([mask, mask.new_ones((n, 1))], dim=1)
        pos = pos[:, -1:] + 1
        out = model(
            input_ids=feed[:, None],
            attention_mask=mask,
            position_ids=pos,
            cache=past,
            use_cache=True,
            logits_to_keep=1,
        )
        past = _cache_of(out)
    return list(zip(tokens, reasons, strict=True))


def _cache_of(out: Any) -> Any:
    """The KV cache of a forward output (``cache`` in transformers 5; ``past_key_values`` before)."""
    c = getattr(out, "cache", None)
    return c if c is not None else getattr(out, "past_key_values", None)


def generation_key(
    base: LoadedBase | LazyBase,
    prompts: Sequence[str],
    config: GenerationConfig,
    *,
    operator: Any | None = None,
    backend: GenerationBackend | None = None,
) -> CacheKey:
    """The cache key of a generation run: base identity, config, prompt-set hash, ``_arm_key(operator)``.

    A ``backend`` adds the parts that name where the run happened (``GenerationBackend.key_parts``);
    in-process transformers (None, or ``HF``) adds none, so its keys are those cached before backends.
    """
    items = {"prompts_sha256": sha256_json(list(prompts))}
    parts = config.key_parts() | (backend.key_parts(base) if backend is not None else {})
    return model_run_key("generations", base.identity(), parts, items, n_items=len(prompts),
                         operator=_arm_key(operator))


def cached_generate(
    base: LoadedBase | LazyBase,
    prompts: Sequence[str],
    config: GenerationConfig = GenerationConfig(),
    cache: Cache | None = None,
    *,
    operator: Any | None = None,
    backend: GenerationBackend | None = None,
    progress: bool = True,
) -> list[Generation]:
    """``generate`` through the cache (JSON entry of kind "generations").

    ``base`` may be a `LazyBase`: the key needs only its identity, so a hit loads no model and
    applies no operator; a miss loads it and runs the ``operator``'s arm, which the caller must
    not have applied itself. A ``backend`` (``dd.lm.get_backend``) runs the miss elsewhere; one
    that cannot run the arm (a hook on a server) refuses it before the cache is asked.
    """
    cache = cache or Cache()
    if backend is not None:
        backend.check(operator)
    key = generation_key(base, prompts, config, operator=operator, backend=backend)

    def build() -> list[Generation]:
        if backend is None:
            return generate(base.load(), prompts, config, operator=operator, progress=progress)
        return backend.generate(base, prompts, config, operator=operator, progress=progress)

    payload = cache.get_or_build(key, lambda: {"items": [g.to_json() for g in build()]}, fmt="json")
    return [Generation.from_json(d) for d in payload["items"]]
