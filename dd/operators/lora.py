"""LoRA adapters trained by SFT or DPO (Arc 1), with a plain torch loop.

The loop is written out so that what the paper's adapters optimised is visible: SFT is the mean
next-token loss over response tokens (plus the end-of-turn tokens, so the adapter learns to stop);
DPO is ``-logsigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r)))`` over summed response log-probs,
with the reference being the same model with its adapters disabled. Batches are right-padded
(left padding would make one target per row be predicted from a pad position). An adapter is
identified by a sha256 of its weights, which enters the operator's spec and so every cache key.

Stages chain: ``train_dpo(..., adapter=sft)`` continues an SFT adapter, and its history holds both
stages. With ``mask_think`` a stage puts no loss on the response's ``<think>``...``</think>``
spans (the paper's v3 "think-block-masked" Qwen3-1.7B variant): the tokens are the same, only
their targets drop out, so a response without such a span trains bit-identically. The mask is
recorded in the stage's history and in the operator's ``stages`` (``sft(think-masked)``), so a
masked adapter never shares a key with an unmasked one, even when their weights agree.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import random
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

from dd.core import progress, sha256_json
from dd.operators._protocol import KeyMixin
from dd.operators._registry import register_operator
from dd.operators._sites import model_of

if TYPE_CHECKING:
    from dd.lm import LoadedBase

Target = Literal["attention", "all-linear"]
ATTENTION_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
THINK_MASKED = "think-masked"
_STATE_FILE = "adapter_model.safetensors"
_DD_FILE = "dd_adapter.json"


@dataclass(frozen=True)
class LoraTrainConfig:
    """Adapter shape and optimiser settings.

    Attributes:
        target: ``attention`` (q/k/v/o projections) or ``all-linear`` (every linear but lm_head).
        r, alpha, dropout: LoRA rank, scaling numerator, dropout.
        lr, batch_size, epochs, max_steps: AdamW learning rate; pairs per step; passes over the
            data; a cap on optimiser steps (None = no cap).
        beta: DPO temperature.
        max_length: tokens kept per rendered pair.
        seed: adapter init and data order.
        mask_think: no loss on tokens of the response's ``<think>``...``</think>`` spans (tags
            included; an unclosed span runs to the end of the response).
    """

    target: Target = "attention"
    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    lr: float = 1e-4
    batch_size: int = 4
    epochs: int = 1
    max_steps: int | None = None
    beta: float = 0.1
    max_length: int = 512
    seed: int = 0
    mask_think: bool = False

    def peft_config(self) -> Any:
        from peft import LoraConfig

        targets: Any = list(ATTENTION_MODULES) if self.target == "attention" else "all-linear"
        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=targets, bias="none", task_type="CAUSAL_LM")


@dataclass(frozen=True, eq=False)
class LoraAdapter:
    """Trained adapter weights (peft's state-dict naming) with their config and history.

    Attributes:
        config: the training config that shaped it (its last stage's optimiser settings).
        state: tensor name -> CPU tensor.
        history: one entry per training stage: method, steps, data hash, per-step losses.
    """

    config: LoraTrainConfig
    state: dict[str, Any]
    history: tuple[dict[str, Any], ...] = field(default=())

    def sha256(self) -> str:
        """Hash of the weights (names, dtypes, shapes, bytes), independent of dict order."""
        import torch

        h = hashlib.sha256()
        for name in sorted(self.state):
            t = self.state[name].detach().cpu().contiguous()
            h.update(f"{name}:{t.dtype}:{tuple(t.shape)}:".encode())
            h.update(t.view(-1).view(torch.uint8).numpy().tobytes())
        return h.hexdigest()

    def save(self, directory: str | Path) -> Path:
        """Write peft's format (``adapter_config.json`` + safetensors) plus dd's history."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.config.peft_config().save_pretrained(str(directory))
        save_file({k: v.contiguous() for k, v in self.state.items()}, str(directory / _STATE_FILE))
        meta = {"config": asdict(self.config), "history": list(self.history), "sha256": self.sha256()}
        (directory / _DD_FILE).write_text(json.dumps(meta, indent=1))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        """Read an adapter written by ``save``; the weights hash is checked.

        Raises:
            ValueError: when the weights do not match the recorded hash.
        """
        from safetensors.torch import load_file

        directory = Path(directory)
        meta = json.loads((directory / _DD_FILE).read_text())
        adapter = cls(LoraTrainConfig(**meta["config"]), load_file(str(directory / _STATE_FILE)),
                      tuple(meta["history"]))
        if adapter.sha256() != meta["sha256"]:
            raise ValueError(f"{directory}: adapter weights do not match their recorded sha256")
        return adapter


@dataclass(frozen=True)
class LoraSpec:
    """Attributes: target, r, alpha (shape); stages (e.g. ``sft+dpo``); adapter_sha256."""

    target: Target
    r: int
    alpha: int
    stages: str
    adapter_sha256: str


class LoraHandle:
    """An attached adapter; ``remove()`` unloads it, restoring the original modules."""

    def __init__(self, peft_model: Any, requires_grad: dict[str, bool]) -> None:
        self.peft_model = peft_model
        self._requires_grad = requires_grad

    def remove(self) -> None:
        if self.peft_model is None:
            return
        model = self.peft_model.unload()
        for name, p in model.named_parameters():
            p.requires_grad_(self._requires_grad.get(name, p.requires_grad))
        self.peft_model = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def attach(base: LoadedBase | Any, config: LoraTrainConfig, state: dict[str, Any] | None = None) -> LoraHandle:
    """Wrap the model with a LoRA adapter (fresh, or loaded from ``state``), in place."""
    import torch
    from peft import get_peft_model, set_peft_model_state_dict

    model = model_of(base)
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    torch.manual_seed(config.seed)
    with warnings.catch_warnings():  # peft 0.21 calls a transformers 5 deprecated alias
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        peft_model = get_peft_model(model, config.peft_config())
    if state is not None:
        device = next(model.parameters()).device
        # peft annotates the return as `namedtuple` (the factory); it is torch's `_IncompatibleKeys`
        result: Any = set_peft_model_state_dict(peft_model, {k: v.to(device) for k, v in state.items()})
        if result.unexpected_keys:
            raise ValueError(f"adapter keys not in the model: {result.unexpected_keys[:5]}")
    return LoraHandle(peft_model, flags)


def stage_name(stage: dict[str, Any]) -> str:
    """A history entry's name in ``LoraSpec.stages``: its method, marked when its loss skipped think spans."""
    return f"{stage['method']}({THINK_MASKED})" if stage.get("loss_mask") == THINK_MASKED else stage["method"]


@register_operator("lora")
class Lora(KeyMixin):
    """Apply a trained LoRA adapter to a base."""

    name = "lora"
    kind = "adapter"

    def __init__(self, adapter: LoraAdapter | str | Path) -> None:
        self.adapter = adapter if isinstance(adapter, LoraAdapter) else LoraAdapter.load(adapter)
        c = self.adapter.config
        stages = "+".join(map(stage_name, self.adapter.history)) or "untrained"
        self.spec = LoraSpec(c.target, c.r, c.alpha, stages, self.adapter.sha256())

    def apply(self, base: LoadedBase | Any) -> LoraHandle:
        handle = attach(base, self.adapter.config, self.adapter.state)
        handle.peft_model.eval()
        return handle


# ---------------------------------------------------------------------------------------------
# Training


Row = tuple[list[int], int, tuple[int, ...]]


def think_positions(tokenizer: Any, ids: Sequence[int], start: int, end: int) -> tuple[int, ...]:
    """Indices in ``[start, end)`` of the tokens that overlap a ``<think>``...``</think>`` span.

    Spans are found in the decoded response tokens, so the rendered ids stay exactly those every
    other stage sees; a token is located by bisecting the (non-decreasing) decoded length of the
    response's prefixes, a few decodes per span boundary.
    """

    def chars(n: int) -> int:  # decoded length of the first n response tokens
        return len(tokenizer.decode(list(ids[start : start + n]), skip_special_tokens=False,
                                    clean_up_tokenization_spaces=False))

    text = tokenizer.decode(list(ids[start:end]), skip_special_tokens=False, clean_up_tokenization_spaces=False)
    n, a = end - start, text.find(THINK_OPEN)
    out: set[int] = set()
    while a >= 0:
        close = text.find(THINK_CLOSE, a + len(THINK_OPEN))
        b = len(text) if close < 0 else close + len(THINK_CLOSE)
        first = bisect.bisect_right(range(1, n + 1), a, key=chars)  # first token ending after a
        last = bisect.bisect_left(range(n), b, key=chars)  # tokens starting before b
        out.update(range(start + first, start + last))
        a = -1 if close < 0 else text.find(THINK_OPEN, b)
    return tuple(sorted(out))


def _encode(tokenizer: Any, prompt: str, response: str, config: LoraTrainConfig) -> Row:
    """Token ids of the rendered pair, the index of its first response token, the tokens with no loss."""
    from dd.lm import render_pair

    r = render_pair(tokenizer, prompt, response, max_length=config.max_length)
    skip = (think_positions(tokenizer, r.ids, r.response_start, r.response_end)
            if config.mask_think and THINK_OPEN in response else ())
    return list(r.ids), r.response_start, skip


def _right_pad(rows: Sequence[Row], pad_id: int, device: Any) -> tuple[Any, Any, Any]:
    """(input_ids, attention_mask, target_mask); target_mask[t] marks ids[t + 1] as a target.

    Targets run from the first response token to the last token (end-of-turn included), except
    each row's ``skip`` tokens.
    """
    import torch

    width = max(len(ids) for ids, _, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    target = torch.zeros((len(rows), width - 1), dtype=torch.bool)
    for i, (seq, start, skip) in enumerate(rows):
        ids[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[i, : len(seq)] = 1
        target[i, max(start, 1) - 1 : len(seq) - 1] = True
        target[i, [t - 1 for t in skip if t >= 1]] = False
    return ids.to(device), mask.to(device), target.to(device)


def _token_logprobs(model: Any, ids: Any, mask: Any) -> Any:
    """log p(ids[:, t + 1] | ids[:, : t + 1]) for every t, shape (batch, width - 1)."""
    import torch

    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    return torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None]).squeeze(-1)


def _steps(n: int, config: LoraTrainConfig) -> list[list[int]]:
    rng = random.Random(config.seed)
    order: list[list[int]] = []
    for _ in range(config.epochs):
        idx = list(range(n))
        rng.shuffle(idx)
        order += [idx[i : i + config.batch_size] for i in range(0, n, config.batch_size)]
    return order[: config.max_steps] if config.max_steps is not None else order


def _train(base: LoadedBase, config: LoraTrainConfig, adapter: LoraAdapter | None, n: int, loss_fn: Any,
           method: str, data_sha256: str) -> LoraAdapter:
    import torch
    from peft import get_peft_model_state_dict

    if adapter is not None and (adapter.config.target, adapter.config.r, adapter.config.alpha) != (
        config.target, config.r, config.alpha):
        raise ValueError("continued training must keep the adapter's target, r and alpha")
    handle = attach(base, config, adapter.state if adapter is not None else None)
    pm = handle.peft_model
    losses: list[float] = []
    try:
        pm.train()
        params = [p for p in pm.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=config.lr)
        torch.manual_seed(config.seed)
        steps = _steps(n, config)
        bar = progress(len(steps), f"train {method} {base.name}")
        for batch in steps:
            loss = loss_fn(pm, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
            bar.update(1)
        bar.close()
        state = {k: v.detach().cpu().clone() for k, v in get_peft_model_state_dict(pm).items()}
    finally:
        pm.eval()
        handle.remove()
    stage: dict[str, Any] = {"method": method, "steps": len(losses), "data_sha256": data_sha256, "losses": losses}
    if config.mask_think:
        stage["loss_mask"] = THINK_MASKED
    history = (adapter.history if adapter is not None else ()) + (stage,)
    return LoraAdapter(config, state, history)


def train_sft(base: LoadedBase, pairs: Sequence[tuple[str, str]], config: LoraTrainConfig = LoraTrainConfig(),
              adapter: LoraAdapter | None = None) -> LoraAdapter:
    """Supervised fine-tuning on (prompt, response) pairs; continues ``adapter`` when given."""
    rows = [_encode(base.tokenizer, p, r, config) for p, r in pairs]

    def loss_fn(model: Any, batch: list[int]) -> Any:
        ids, mask, target = _right_pad([rows[i] for i in batch], base.pad_token_id, base.device)
        lp = _token_logprobs(model, ids, mask)
        return -(lp * target).sum() / target.sum().clamp(min=1)

    return _train(base, config, adapter, len(rows), loss_fn, "sft", sha256_json([list(p) for p in pairs]))


def train_dpo(base: LoadedBase, triples: Sequence[tuple[str, str, str]],
              config: LoraTrainConfig = LoraTrainConfig(), adapter: LoraAdapter | None = None) -> LoraAdapter:
    """DPO on (prompt, chosen, rejected); the reference is the model with adapters disabled.

    With ``mask_think`` both summed log-probs leave out the think spans of their response.
    """
    import torch
    import torch.nn.functional as F

    chosen = [_encode(base.tokenizer, p, c, config) for p, c, _ in triples]
    rejected = [_encode(base.tokenizer, p, r, config) for p, _, r in triples]

    def seq_logprob(model: Any, rows: list[Row]) -> Any:
        ids, mask, target = _right_pad(rows, base.pad_token_id, base.device)
        return (_token_logprobs(model, ids, mask) * target).sum(-1)

    def loss_fn(model: Any, batch: list[int]) -> Any:
        rows = [chosen[i] for i in batch] + [rejected[i] for i in batch]
        with torch.no_grad(), model.disable_adapter():
            ref = seq_logprob(model, rows)
        pi = seq_logprob(model, rows)
        k = len(batch)
        margin = (pi[:k] - ref[:k]) - (pi[k:] - ref[k:])
        return -F.logsigmoid(config.beta * margin).mean()

    return _train(base, config, adapter, len(triples), loss_fn, "dpo", sha256_json([list(t) for t in triples]))
