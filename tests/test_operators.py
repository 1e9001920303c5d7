"""The operator protocol and registry, and the light built-ins: frozen, sidecar, system-prompt."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from importlib.metadata import EntryPoint

import numpy as np
import pytest

import dd.operators as ops
from dd.core import Registry
from dd.lm import build_tokenizer, render_prompt
from dd.operators import (
    Frozen,
    ModelOperator,
    Operator,
    PromptOperator,
    ReadoutOperator,
    Sidecar,
    SystemPrompt,
    Tempering,
    _registry,
    get_operator,
    operator_names,
    register_operator,
    spec_key,
    supports_system_role,
)

BUILTINS = {"frozen", "lora", "sidecar", "system-prompt", "tempering"}


def test_package_imports_without_torch_or_sklearn():
    code = ("import sys, dd.operators as o; o.operator_names(); "
            "assert not {'torch', 'sklearn', 'transformers', 'peft'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_builtins_are_registered_and_satisfy_their_protocols():
    assert BUILTINS <= set(operator_names())
    assert isinstance(get_operator("frozen"), ModelOperator)
    assert isinstance(get_operator("tempering", heads=[(0, 1)], lam=0.5), ModelOperator)
    assert isinstance(get_operator("system-prompt"), PromptOperator)
    assert isinstance(get_operator("sidecar"), ReadoutOperator)
    for name in ("frozen", "sidecar", "system-prompt"):
        op = get_operator(name)
        assert isinstance(op, Operator) and op.name == name and op.key().startswith(name)
        hash(op.spec)
        with pytest.raises(dataclasses.FrozenInstanceError):
            op.spec.x = 1  # type: ignore[attr-defined]


def test_unknown_and_duplicate_names_are_explained():
    with pytest.raises(KeyError, match="operator 'nope' is not registered; known: .*tempering"):
        get_operator("nope")
    with pytest.raises(ValueError, match="operator 'frozen' is already registered by"):
        register_operator("frozen")(Tempering)
    register_operator("frozen")(Frozen)  # re-registering the same factory is harmless
    assert get_operator("frozen").__class__ is Frozen


def entry_point_registry(monkeypatch, *eps: EntryPoint) -> list[str]:
    """Install a fresh operator registry (built-in ``frozen`` only) whose group holds ``eps``.

    Returns the groups read so far, one item per read.
    """
    fresh = Registry("operator", [("frozen", Frozen)], entry_point_group=ops.ENTRY_POINT_GROUP)
    monkeypatch.setattr(_registry, "OPERATORS", fresh)
    calls: list[str] = []

    def entry_points(group):
        calls.append(group)
        return list(eps) if group == ops.ENTRY_POINT_GROUP else []

    monkeypatch.setattr("dd.core._registry.entry_points", entry_points)
    return calls


def test_third_party_operator_through_entry_points(monkeypatch):
    @dataclasses.dataclass(frozen=True)
    class StubSpec:
        alpha: float

    class Stub:
        name, kind = "stub-steer", "hook"

        def __init__(self, alpha: float = 1.0) -> None:
            self.spec = StubSpec(alpha)

        def key(self) -> str:
            return spec_key(self.name, self.spec)

    monkeypatch.setitem(sys.modules, "dd_stub_plugin", type(sys)("dd_stub_plugin"))
    sys.modules["dd_stub_plugin"].Stub = Stub
    ep = EntryPoint(name="stub-steer", value="dd_stub_plugin:Stub", group="dd.operators")
    reads = entry_point_registry(monkeypatch, ep)
    assert get_operator("frozen").key() == "frozen" and reads == []  # a built-in's lookup reads no group
    assert operator_names() == ("frozen", "stub-steer")
    op = get_operator("stub-steer", alpha=0.25)
    assert isinstance(op, Operator) and op.key() == 'stub-steer:{"alpha":0.25}'
    assert ops.operator_factory("stub-steer") is Stub
    assert reads == ["dd.operators"]  # read once, lazily


def test_an_entry_point_cannot_take_a_builtin_name(monkeypatch):
    monkeypatch.setitem(sys.modules, "dd_stub_plugin", type(sys)("dd_stub_plugin"))
    sys.modules["dd_stub_plugin"].Impostor = Tempering
    entry_point_registry(monkeypatch, EntryPoint(name="frozen", value="dd_stub_plugin:Impostor",
                                                 group="dd.operators"))
    for _ in range(2):  # refused on every listing, never silently shadowed
        with pytest.raises(ValueError, match="entry point 'frozen' = 'dd_stub_plugin:Impostor'.*already registered"):
            operator_names()


def test_two_entry_points_cannot_share_a_name(monkeypatch):
    monkeypatch.setitem(sys.modules, "dd_stub_plugin", type(sys)("dd_stub_plugin"))
    sys.modules["dd_stub_plugin"].A, sys.modules["dd_stub_plugin"].B = Frozen, Tempering
    entry_point_registry(monkeypatch, *(EntryPoint(name="steer", value=f"dd_stub_plugin:{v}", group="dd.operators")
                                        for v in "AB"))
    with pytest.raises(ValueError, match="'dd_stub_plugin:A' and 'dd_stub_plugin:B' .* both claim .* 'steer'"):
        get_operator("steer")


def test_one_registry_for_bases_judges_and_operators():
    from dd.judges import _rubrics, register_judge
    from dd.lm import REGISTRY

    assert isinstance(REGISTRY, Registry) and isinstance(_rubrics.JUDGES, Registry)
    assert isinstance(_registry.OPERATORS, Registry)
    assert list(REGISTRY)[0] == "qwen3-0.6b" and "tiny-llama" in REGISTRY and "nope" not in REGISTRY
    with pytest.raises(KeyError, match="base 'nope' is not registered; known: .*tiny-llama"):
        REGISTRY["nope"]
    with pytest.raises(ValueError, match="judge 'v4' is already registered"):
        register_judge("v4")(type("OtherV4", (), {}))
    with pytest.raises(ValueError, match="base 'a' is already registered"):
        Registry("base", [("a", 1), ("a", 2)])


def test_spec_keys_are_canonical():
    assert Frozen().key() == "frozen"  # keys like no operator: the untouched base's cache entries
    assert SystemPrompt("Be humble.").key() == 'system-prompt:{"separator":"\\n\\n","text":"Be humble."}'

    @dataclasses.dataclass
    class Mutable:
        x: int = 1

    with pytest.raises(TypeError, match="must be frozen"):
        spec_key("m", Mutable())
    with pytest.raises(TypeError, match="dataclass instance"):
        spec_key("m", {"x": 1})


def test_frozen_changes_nothing():
    with Frozen().apply(object()) as handle:
        handle.remove()


# --------------------------------------------------------------------------- sidecar


def separable(n=80, d=6, seed=0):
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n // 2, int), np.zeros(n // 2, int)]
    X = rng.normal(size=(n, d))
    X[:, 0] += 2.5 * (2 * y - 1)
    return X, y


def test_sidecar_probe_is_an_sklearn_estimator():
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError

    probe = Sidecar(C=0.1, threshold=0.4, random_state=3).estimator()
    assert probe.get_params() == {"C": 0.1, "threshold": 0.4, "random_state": 3}
    assert not [k for k in vars(probe) if k.endswith("_")]  # the constructor only stores params
    with pytest.raises(NotFittedError):
        probe.predict_proba(np.zeros((1, 6)))
    X, y = separable()
    fitted = clone(probe).fit(X, y)
    assert fitted.n_features_in_ == 6 and fitted.classes_.tolist() == [0, 1]
    assert fitted.score(X, y) > 0.9
    np.testing.assert_allclose(fitted.predict_proba(X).sum(1), 1.0)
    from dd.protocol import fit_predict

    np.testing.assert_allclose(fitted.p_correct(X), fit_predict(X, y, X, C=0.1), atol=1e-9)


def test_sidecar_hedges_exactly_below_threshold():
    X, y = separable()
    responses = [f"answer {i}" for i in range(len(y))]
    side = Sidecar(threshold=0.5).fit(X, y)
    out = side.hedge(responses, X)
    p = side.estimator_.p_correct(X)
    for r, o, pc in zip(responses, out, p, strict=True):
        assert o == (f"{side.spec.hedge} {r}" if pc < 0.5 else r)
    assert side.hedge(responses, X) == out  # deterministic
    assert Sidecar(threshold=0.0).fit(X, y).hedge(responses, X) == responses
    assert all(o.startswith(side.spec.hedge) for o in Sidecar(threshold=1.01).fit(X, y).hedge(responses, X))
    with pytest.raises(ValueError, match="responses"):
        side.hedge(responses[:3], X)
    with pytest.raises(RuntimeError, match="not fitted"):
        Sidecar().hedge(responses, X)


def test_sidecar_pooling_reads_the_named_feature():
    from dd.lm import FeatureSet

    X, y = separable()
    n = len(y)
    fs = FeatureSet(h_last=X, last_n_mean=-X, response_mean=np.zeros_like(X), positions=np.zeros(n),
                    n_response_tokens=np.ones(n), n_tokens=np.ones(n), truncated=np.zeros(n, bool))
    assert Sidecar(pooling="last").features(fs) is X
    np.testing.assert_array_equal(Sidecar(pooling="last4-mean").features(fs), -X)
    with pytest.raises(ValueError, match="pooling"):
        Sidecar(pooling="mean")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="C in"):
        Sidecar(C=10.0)
    assert ops.SidecarProbe is type(Sidecar().estimator())


# --------------------------------------------------------------------------- system prompt

NO_SYSTEM = (
    "{% for m in messages %}{% if m['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
DROPS_SYSTEM = (
    "{% for m in messages %}{% if m['role'] != 'system' %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def test_system_role_when_the_template_has_one(tokenizer):
    op = SystemPrompt("Say when you are unsure.")
    assert supports_system_role(tokenizer)
    assert op.messages("Q?", tokenizer) == [
        {"role": "system", "content": "Say when you are unsure."}, {"role": "user", "content": "Q?"}]
    text = tokenizer.decode(render_prompt(tokenizer, "Q?", operator=op))
    assert "<|system|>\nSay when you are unsure." in text and text.endswith("<|assistant|>\n")


@pytest.mark.parametrize("template", [NO_SYSTEM, DROPS_SYSTEM], ids=["raises", "drops"])
def test_prefixes_the_user_turn_without_a_system_role(tokenizer, template):
    tok = build_tokenizer()
    tok.chat_template = template
    op = SystemPrompt("Say when you are unsure.")
    assert not supports_system_role(tok)
    assert op.messages("Q?", tok) == [{"role": "user", "content": "Say when you are unsure.\n\nQ?"}]
    assert "Say when you are unsure.\n\nQ?" in tok.decode(render_prompt(tok, "Q?", operator=op))


def test_plain_prompt_without_a_chat_template(tokenizer):
    text = tokenizer.decode(render_prompt(tokenizer, "Q?", chat=False, operator=SystemPrompt("Be careful.")))
    assert text.endswith("Question: Be careful.\n\nQ?\nAnswer:")
