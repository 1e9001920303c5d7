"""The one teacher-forcing loop: render (prompt, response) pairs, batch, left-pad, forward.

Features, perplexity and head attribution all read a base after it has "said" a fixed
response. They differ only in what they read (hidden states, logits, a projection's input), so
the part that must not differ lives here once: each pair is rendered as one sequence with its
response tokens located (``render_pair``); sequences are batched by length, left-padded with
``position_ids`` from the mask (a batched row then equals the row alone, see ``left_pad``); and
each batch comes back with every row's response span in padded coordinates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dd.lm._generate import PLAIN_PAIR, _batches, _template_kwargs, left_pad, uses_chat_template

if TYPE_CHECKING:
    from dd.lm._models import LoadedBase


@dataclass(frozen=True)
class RenderedPair:
    """Token ids of one rendered pair and which of them belong to the response."""

    ids: tuple[int, ...]
    response_start: int  # first response token index
    response_end: int  # one past the last response token index


def render_pair(
    tokenizer: Any,
    prompt: str,
    response: str,
    *,
    chat: bool = True,
    enable_thinking: bool | None = None,
    max_length: int | None = None,
    response_cap: int | None = None,
) -> RenderedPair:
    """Render (prompt, response) as one sequence and locate the response tokens.

    The pair is one chat (user turn = prompt, assistant turn = response), or ``PLAIN_PAIR`` for
    a tokenizer without a chat template. Response tokens are found through character offsets, so
    templates that add text around the assistant content (Qwen3's empty think block,
    end-of-turn markers) are handled. ``response_cap`` keeps the first ``response_cap`` response
    tokens and the template's closing tokens after them (so the last rendered token is still the
    end-of-turn marker; under causal attention the kept response tokens read the same either
    way). ``max_length`` then keeps the first tokens only, clipping the span.
    """
    if uses_chat_template(tokenizer, chat):
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}],
            tokenize=False,
            **_template_kwargs(enable_thinking),
        )
        add_special = False
    else:
        text = PLAIN_PAIR.format(prompt=prompt, response=response)
        add_special = True
    enc = tokenizer(text, add_special_tokens=add_special, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
    needle = response if response in text else response.strip()
    start_char = text.rfind(needle) if needle else len(text)
    if start_char < 0:
        # a template that rewrites the answer (Qwen3 re-renders a <think> block) leaves no span to read
        raise ValueError(f"the chat template rewrote the response, so its tokens cannot be located: "
                         f"{response[:80]!r} is not in the rendered text")
    end_char = start_char + len(needle)
    inside = [i for i, (a, b) in enumerate(offsets) if b > a and a < end_char and b > start_char]
    r0, r1 = (inside[0], inside[-1] + 1) if inside else (len(ids), len(ids))
    if response_cap is not None and r1 - r0 > response_cap:
        ids, r1 = ids[: r0 + response_cap] + ids[r1:], r0 + response_cap
    if max_length is not None and len(ids) > max_length:
        ids = ids[:max_length]
        r0, r1 = min(r0, max_length), min(r1, max_length)
    return RenderedPair(tuple(ids), r0, r1)


@dataclass(frozen=True, eq=False)
class ForcedBatch:
    """One left-padded batch: which pairs its rows are and where their tokens sit.

    Attributes:
        items: per row, the index of its pair in the rendered sequence given to the loop.
        offsets: per row, the number of pad tokens before its first real token.
        spans: per row, the response tokens as [start, end) in padded coordinates
            (``start == end`` when the response rendered to no token).
        input_ids: (rows, width) token ids.
        attention_mask: (rows, width), 0 on padding.
    """

    items: tuple[int, ...]
    offsets: tuple[int, ...]
    spans: tuple[tuple[int, int], ...]
    input_ids: Any
    attention_mask: Any


#: A read inside the forward: called with the batch and a module's first positional input.
InputHook = Callable[[ForcedBatch, Any], None]


def teacher_force(
    base: LoadedBase,
    rendered: Sequence[RenderedPair],
    *,
    batch_size: int = 8,
    module: Any = None,
    hooks: Sequence[tuple[Any, InputHook]] = (),
    **forward_kwargs: Any,
) -> Iterator[tuple[ForcedBatch, Any]]:
    """Run every rendered pair through ``module`` and yield each batch with its forward output.

    Batches hold pairs of similar length (longest first), so items come back out of order:
    ``ForcedBatch.items`` maps rows to pairs. The forward runs under ``torch.inference_mode``;
    hooks already on the model (an operator's) act. The loop keeps no output once it is
    yielded, so a consumer that drops its reference holds one batch's logits at a time.

    Args:
        base: a loaded base (its pad token and device are used).
        rendered: the pairs, from ``render_pair``.
        batch_size: rows per forward; results do not depend on it beyond float noise.
        module: what to call (default ``base.model``; e.g. the text decoder without the LM head).
        hooks: (module, read) pairs: ``read`` sees the current batch and the module's input
            during the forward, so a reduction can run there without keeping every activation;
            they come off when the loop ends or is closed.
        **forward_kwargs: passed to the forward (``output_hidden_states``, ``logits_to_keep``, ...).
    """
    import torch

    forward = base.model if module is None else module
    batch: ForcedBatch

    def pre_hook(read: InputHook) -> Any:
        return lambda _module, args: read(batch, args[0])  # the batch being run, read at call time

    handles = [m.register_forward_pre_hook(pre_hook(read)) for m, read in hooks]
    try:
        for items in _batches([len(r.ids) for r in rendered], max(1, batch_size)):
            rows = [rendered[i] for i in items]
            ids, mask, pos = left_pad([r.ids for r in rows], base.pad_token_id, base.device)
            offsets = tuple(ids.shape[1] - len(r.ids) for r in rows)
            spans = tuple((o + r.response_start, o + r.response_end) for o, r in zip(offsets, rows, strict=True))
            batch = ForcedBatch(tuple(items), offsets, spans, ids, mask)
            with torch.inference_mode():
                out = forward(input_ids=ids, attention_mask=mask, position_ids=pos, **forward_kwargs)
            yield batch, out
            del out  # released before the next forward, not after it
    finally:
        for h in handles:
            h.remove()
