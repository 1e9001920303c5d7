"""The claim file: one behavioural-editing claim, from prompts to the verdict claimed per step.

``pytest claims/pipeline --dd-claim claim.toml`` runs the claim a TOML file states through the
effect protocol (`dd.arcs.ClaimRun`). The file is read strictly: an unknown key, a value of the
wrong type, a missing required key or a contradiction (a claimed dose that is not among the doses,
a second base of the same family, an expected failure without a reason) is a `ClaimFileError`
naming the file and the key before anything runs, so a typo can never silently fall back to a
default. Paths are relative to the claim file; ``released:step16`` and ``released:fresh`` name the
paper's released prompt sets, read from the artifacts at run time and never copied.
The operator is ``steering`` (a hook: in-process generation only) or ``system-prompt`` (a prompt
operator: it changes what the base reads, not its weights, so it runs on every generation backend,
a remote server included; it has no dose, so step 4 does not apply to it).
The format is documented in the README ("Your own claim: the claim file").
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from dd.core import check_gen_backend
from dd.fresh import GeneratorSpec
from dd.judges import LEXICAL_AXIS, V4_AXES
from dd.protocol import PASS, VERDICTS

T = TypeVar("T")

#: The five steps, in order, with the suffix of each report entry's claim id.
STEPS: dict[str, str] = {"in_distribution": "step1.in_distribution", "fresh": "step2.fresh", "axes": "step3.axes",
                         "dose": "step4.dose", "second_base": "step5.second_base"}
RELEASED = ("step16", "fresh")
MARKS = ("slow", "heavy", "model", "judge", "code_exec")
#: The axes each judge gives an arm (`dd.arcs._claim_arms.axis_scores` computes them).
JUDGE_AXES: dict[str, tuple[str, ...]] = {
    "lexical": (LEXICAL_AXIS,),
    "v4": V4_AXES,
    "verbal": ("verbal_hedge",),
    "checklist": ("coverage",),
}
_MISSING = object()


class ClaimFileError(ValueError):
    """A claim file that cannot run as written; the message names the file and the key."""


@dataclass(frozen=True)
class Source:
    """Where a prompt set (or reference pairs) comes from: a file, or a released set of the paper."""

    path: Path | None = None
    released: str | None = None

    def describe(self) -> str:
        return f"released:{self.released}" if self.released else str(self.path)


@dataclass(frozen=True)
class SteeringClaim:
    """The steering operator as the file states it (``[operator]``).

    Attributes:
        layer: the decoder layer, or ``middle`` (half the layer count, rounded down) per base.
        multiplier: the claimed dose (steps 1, 2, 3 and 5).
        multipliers: the doses of step 4, increasing; the base arm is dose 0.
        pairs: how many training prompts build the vector (the first ones).
        positive, negative: each pair's two answers; ``{response}`` is the base's own answer.
        random_seed: the seed of the random-direction baseline.
    """

    layer: int | str
    multiplier: float
    multipliers: tuple[float, ...]
    pairs: int
    positive: str
    negative: str
    random_seed: int = 0


@dataclass(frozen=True)
class PromptClaim:
    """The system-prompt operator as the file states it (``[operator] name = "system-prompt"``).

    Attributes:
        text: the system prompt the claim is about (``dd.operators.SystemPrompt``).
    """

    text: str


#: The keys each operator takes in ``[operator]`` (``name`` included).
OPERATOR_KEYS = {"steering": frozenset("name layer multiplier multipliers pairs positive negative random_seed".split()),
                 "system-prompt": frozenset(("name", "text"))}


@dataclass(frozen=True)
class JudgeClaim:
    """``[judge]``: the judges, the claimed axes with their directions, the judged content axes."""

    judges: tuple[str, ...]
    axes: Mapping[str, int]
    content_axes: tuple[str, ...] = ()
    base_url: str | None = None
    model: str | None = None

    @property
    def needs_endpoint(self) -> bool:
        return any(j != "lexical" for j in self.judges)


@dataclass(frozen=True)
class Budgets:
    """``[budgets]``: new tokens per answer, subset sizes (None: all), batch and chunk sizes."""

    n_predict: int
    train: int | None = None
    fresh: int | None = None
    reference: int | None = None
    batch_size: int = 8
    chunk: int = 16


@dataclass(frozen=True)
class Expectation:
    """The verdict a step claims, and for anything but a pass, why (quoting its numbers)."""

    verdict: str = PASS
    why: str = ""


@dataclass(frozen=True)
class ClaimFile:
    """A parsed claim file (see the module doc); `load_claim` builds it."""

    path: Path
    id: str
    description: str
    marks: tuple[str, ...]
    base: str
    second_base: str | None
    operator: SteeringClaim | PromptClaim
    system_prompt: str
    random_direction: bool
    train: Source
    train_generator: str
    fresh: Source | GeneratorSpec
    fresh_generator: str | None
    judge: JudgeClaim
    reference: Source | None
    humaneval: tuple[int, tuple[int, ...]] | None
    budgets: Budgets
    expect: Mapping[str, Expectation]
    backend: str | None = None

    @property
    def steps(self) -> tuple[str, ...]:
        """The steps this file runs: step 5 only when it names a second base."""
        return _steps(self.second_base)

    def not_applicable(self, step: str) -> str | None:
        """Why ``step`` does not apply to this claim's operator (it then carries no expectation); None if it does."""
        return _not_applicable(step, self.operator, _anchored(self.reference, self.humaneval, self.judge))

    def operator_label(self) -> str:
        op = self.operator
        if isinstance(op, PromptClaim):
            return "system-prompt"
        return f"steering:layer={op.layer},multiplier={op.multiplier:g}"


def _steps(second_base: str | None) -> tuple[str, ...]:
    return tuple(s for s in STEPS if s != "second_base" or second_base)


def _anchored(reference: Source | None, humaneval: Any, judge: JudgeClaim) -> bool:
    """Whether step 3 has a content anchor: reference pairs, HumanEval or a judged content axis."""
    return reference is not None or humaneval is not None or bool(judge.content_axes)


def _not_applicable(step: str, operator: SteeringClaim | PromptClaim, anchored: bool) -> str | None:
    if not isinstance(operator, PromptClaim):
        return None
    if step == "dose":
        return ("step 4 (dose-response, steerability) needs a dose, and a system-prompt operator has none: "
                "it applies to a steering operator's multipliers")
    if step == "axes" and not anchored:
        return ("step 3 needs a content anchor the system prompt can be measured on: add [content] humaneval "
                "(with --dd-allow-code-exec) or [judge] content_axes")
    return None


#: Every table's keys (None: any key, as a table of axes); a key not listed is an error.
KEYS: dict[str, frozenset[str] | None] = {k: None if v is None else frozenset(v.split()) for k, v in {
    "": "claim base operator baselines train fresh judge content budgets generation expect",
    "claim": "id description marks",
    "base": "name second",
    "operator": " ".join(sorted(set().union(*OPERATOR_KEYS.values()))),
    "baselines": "system_prompt random_direction",
    "train": "prompts generator",
    "fresh": "prompts generator generate",
    "fresh.generate": "base_url model n domain seed temperature examples",
    "judge": "judges axes content_axes base_url model",
    "judge.axes": None,
    "content": "reference humaneval",
    "content.humaneval": "problems budgets",
    "budgets": "n_predict train fresh reference batch_size chunk",
    "generation": "backend",
    "expect": " ".join(STEPS),
}.items()}


class _Table:
    """One TOML table, read strictly: an unknown key is refused first, then each key's type is checked."""

    def __init__(self, path: Path, name: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise ClaimFileError(f"{path}: [{name}] must be a table, got {type(data).__name__}")
        self.path, self.name, self.data = path, name, data
        known = KEYS[name]
        unknown = sorted(set(data) - known) if known is not None else []
        if unknown:
            where = f"[{name}]" if name else "the top level"
            raise ClaimFileError(f"{path}: unknown key {unknown[0]!r} in {where} "
                                 f"(known keys: {', '.join(sorted(known or ()))})")

    def where(self, key: str) -> str:
        return f"{self.path}: [{self.name}] {key}"

    def error(self, key: str, why: str) -> ClaimFileError:
        return ClaimFileError(f"{self.where(key)}: {why}")

    def get(self, key: str, kind: type[T] | tuple[type, ...], default: Any = _MISSING) -> Any:
        if key not in self.data:
            if default is _MISSING:
                raise self.error(key, "is required")
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise self.error(key, f"must be {names}, got {type(value).__name__} {value!r}")
        return value

    def table(self, key: str) -> _Table:
        found = self.optional(key)
        if found is None:
            raise ClaimFileError(f"{self.path}: [{key if self.name == '' else f'{self.name}.{key}'}] is required")
        return found

    def optional(self, key: str) -> _Table | None:
        if key not in self.data:
            return None
        return _Table(self.path, key if self.name == "" else f"{self.name}.{key}", self.data[key])


def _source(t: _Table, key: str) -> Source:
    value: str = t.get(key, str)
    if value.startswith("released:"):
        name = value.removeprefix("released:")
        if name not in RELEASED:
            raise t.error(key, f"names no released set: {value!r} (known: released:step16, released:fresh)")
        return Source(released=name)
    path = (t.path.parent / value).resolve()
    if path.suffix not in (".txt", ".jsonl", ".json"):
        raise t.error(key, f"{value!r}: a prompt file is .txt (one per line), .jsonl or a dd-fresh .json file")
    if not path.is_file():
        raise t.error(key, f"no such file: {path}")
    return Source(path=path)


def _count(t: _Table, key: str, default: Any = _MISSING) -> Any:
    value = t.get(key, int, default)
    if key in t.data and value < 1:
        raise t.error(key, f"must be a positive count, got {value}")
    return value


def _operator(t: _Table) -> SteeringClaim | PromptClaim:
    name = t.get("name", str)
    if name not in OPERATOR_KEYS:
        raise t.error("name", f"claim files run the {' or '.join(map(repr, OPERATOR_KEYS))} operator; {name!r} is "
                              "not supported yet")
    other = sorted(set(t.data) - OPERATOR_KEYS[name])
    if other:
        takes = ", ".join(sorted(OPERATOR_KEYS[name]))
        raise t.error(other[0], f"is not a key of the {name!r} operator (it takes: {takes})")
    if name == "system-prompt":
        return PromptClaim(_text(t, "text"))
    layer = t.get("layer", (int, str))
    if isinstance(layer, str) and layer != "middle":
        raise t.error("layer", f"is a layer index or 'middle', not {layer!r}")
    multiplier = t.get("multiplier", float)
    multipliers = tuple(t.get("multipliers", list))
    if not multipliers or not all(isinstance(m, int | float) and not isinstance(m, bool) and m > 0
                                  for m in multipliers):
        raise t.error("multipliers", f"must be positive numbers (the base arm is dose 0), got {multipliers!r}")
    multipliers = tuple(float(m) for m in multipliers)
    if list(multipliers) != sorted(set(multipliers)):
        raise t.error("multipliers", f"must increase without repeats, got {list(multipliers)}")
    if multiplier not in multipliers:
        raise t.error("multiplier", f"the claimed dose {multiplier:g} is not among multipliers {list(multipliers)}")
    templates = {k: t.get(k, str) for k in ("positive", "negative")}
    for key, text in templates.items():
        fields = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
        if fields - {"response"}:
            raise t.error(key, f"may hold only the field {{response}}, not {sorted(fields - {'response'})}")
    return SteeringClaim(layer, multiplier, multipliers, _count(t, "pairs"), templates["positive"],
                         templates["negative"], t.get("random_seed", int, 0))


def _judge(t: _Table) -> JudgeClaim:
    judges = tuple(t.get("judges", list))
    unknown = [j for j in judges if j not in JUDGE_AXES]
    if not judges or unknown:
        raise t.error("judges", f"names judges from {sorted(JUDGE_AXES)}; got {list(judges)}")
    available = {a for j in judges for a in JUDGE_AXES[j]}
    axes_table = t.table("axes")
    axes = {}
    for axis in list(axes_table.data):
        direction = axes_table.get(axis, int)
        if axis not in available:
            raise axes_table.error(axis, f"no judge in {list(judges)} gives this axis (they give {sorted(available)})")
        if direction not in (1, -1):
            raise axes_table.error(axis, f"is the claimed direction, +1 or -1, not {direction}")
        axes[axis] = direction
    if not axes:
        raise t.error("axes", "must claim at least one axis")
    content = tuple(t.get("content_axes", list, []))
    bad = [a for a in content if a not in available or a in axes]
    if bad:
        raise t.error("content_axes", f"{bad}: a content axis is judged ({sorted(available)}) and not claimed")
    return JudgeClaim(judges, axes, content, t.get("base_url", str, None), t.get("model", str, None))


def _fresh(t: _Table) -> tuple[Source | GeneratorSpec, str | None]:
    gen = t.optional("generate")
    if gen is not None:
        for key in ("prompts", "generator"):
            if key in t.data:
                raise t.error(key, "give either prompts with their generator, or generate (which names its model)")
        spec = GeneratorSpec(gen.get("base_url", str), gen.get("model", str), _count(gen, "n"), gen.get("domain", str),
                             gen.get("seed", int, 0), gen.get("temperature", float, 1.0),
                             _count(gen, "examples", 3))
        return spec, None
    source = _source(t, "prompts")
    dd_fresh = source.path is not None and source.path.suffix == ".json"
    generator = t.get("generator", str, None if dd_fresh else _MISSING)
    return source, generator


def _expect(t: _Table, steps: tuple[str, ...], not_applicable: Mapping[str, str | None]) -> dict[str, Expectation]:
    out = {}
    for step in STEPS:
        if step not in steps:
            if step in t.data:
                raise t.error(step, "is claimed, but the file names no second base ([base] second)")
            continue
        if not_applicable[step]:
            if step in t.data:
                raise t.error(step, f"is claimed, but does not apply: {not_applicable[step]}")
            continue
        value = t.get(step, (str, dict))
        verdict, why = (value, "") if isinstance(value, str) else (value.get("verdict"), value.get("why", ""))
        if isinstance(value, dict) and set(value) - {"verdict", "why"}:
            raise t.error(step, f"unknown key {sorted(set(value) - {'verdict', 'why'})[0]!r} (known: verdict, why)")
        if verdict not in VERDICTS:
            raise t.error(step, f"claims a verdict from {VERDICTS}, not {verdict!r}")
        if verdict != PASS and not str(why).strip():
            raise t.error(step, f"an expected {verdict!r} needs a why quoting its numbers ({{verdict, why}})")
        out[step] = Expectation(verdict, str(why))
    return out


def _family(t: _Table, key: str, name: str) -> str:
    from dd.lm import REGISTRY

    if name not in REGISTRY:
        raise t.error(key, f"unknown base {name!r} (known: {', '.join(REGISTRY)})")
    return REGISTRY[name].family


def _humaneval(content: _Table) -> tuple[int, tuple[int, ...]] | None:
    table = content.optional("humaneval")
    if table is None:
        return None
    budgets = tuple(table.get("budgets", list))
    if not budgets or not all(isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in budgets):
        raise table.error("budgets", f"must be a list of positive token budgets, got {list(budgets)}")
    return _count(table, "problems"), budgets


def _text(t: _Table, key: str) -> str:
    value = t.get(key, str)
    if not value.strip():
        raise t.error(key, "must not be empty")
    return value


def _content(top: _Table, operator: SteeringClaim | PromptClaim) -> tuple[Source | None, Any]:
    """``[content]``: (reference pairs, humaneval). A steering claim needs the table; a system prompt may omit it."""
    content = top.table("content") if isinstance(operator, SteeringClaim) else top.optional("content")
    if content is None:
        return None, None
    reference = _source(content, "reference") if content.get("reference", str, None) else None
    if reference is not None and isinstance(operator, PromptClaim):
        raise content.error("reference", "reference perplexity reads an edit of the weights, teacher-forced without a "
                                         "system turn; a system-prompt operator leaves the weights as they are: "
                                         "anchor step 3 with humaneval or [judge] content_axes")
    return reference, _humaneval(content)


def _baselines(t: _Table, operator: SteeringClaim | PromptClaim) -> tuple[str, bool]:
    """``[baselines]``: the system prompt to beat, and (steering only) the random direction."""
    system_prompt = _text(t, "system_prompt")
    if isinstance(operator, SteeringClaim):
        return system_prompt, t.get("random_direction", bool, True)
    if t.get("random_direction", bool, False):
        raise t.error("random_direction", "a random direction of the vector's norm is a steering baseline; a "
                                          "system-prompt operator has no vector")
    if system_prompt.strip() == operator.text.strip():
        raise t.error("system_prompt", "is the claimed operator's own text: the baseline must be another prompt "
                                       "(the status quo the claimed prompt must beat)")
    return system_prompt, False


def _backend(table: _Table | None, operator: SteeringClaim | PromptClaim) -> str | None:
    """``[generation] backend``: where the claim's arms generate unless ``--dd-gen-backend`` says otherwise."""
    if table is None:
        return None
    backend = table.get("backend", str, None)
    if backend is None:
        return None
    try:
        check_gen_backend(backend, table.where("backend"))
    except ValueError as err:
        raise ClaimFileError(str(err)) from None
    if isinstance(operator, SteeringClaim) and backend != "hf":
        raise table.error("backend", f"a steering vector is a hook on the local model and cannot run in {backend!r}: "
                                     "use 'hf' (or a system-prompt operator)")
    return backend


def load_claim(path: str | Path) -> ClaimFile:
    """Read and check a claim file.

    Raises:
        ClaimFileError: naming the file and the key (see the module doc).
    """
    path = Path(path).resolve()
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ClaimFileError(f"{path}: no such claim file") from None
    except tomllib.TOMLDecodeError as err:
        raise ClaimFileError(f"{path}: not valid TOML: {err}") from None
    top = _Table(path, "", raw)
    claim, base, operator = top.table("claim"), top.table("base"), _operator(top.table("operator"))
    train, fresh, judge, budgets = top.table("train"), top.table("fresh"), top.table("judge"), top.table("budgets")
    expect = top.table("expect")
    marks = tuple(claim.get("marks", list, []))
    if set(marks) - set(MARKS):
        raise claim.error("marks", f"marks come from {MARKS}, got {list(marks)}")
    base_name, second = base.get("name", str), base.get("second", str, None)
    family = _family(base, "name", base_name)
    if second is not None and _family(base, "second", second) == family:
        raise base.error("second", f"{second!r} is of the family of {base_name!r} ({family}); step 5 needs a base "
                                   "of another family")
    fresh_source, fresh_generator = _fresh(fresh)
    system_prompt, random_direction = _baselines(top.table("baselines"), operator)
    reference, humaneval = _content(top, operator)
    judged = _judge(judge)
    anchored = _anchored(reference, humaneval, judged)
    if isinstance(operator, SteeringClaim) and not anchored:
        raise top.table("content").error("reference", "step 3 needs a content anchor: reference pairs (perplexity), "
                                                      "humaneval, or [judge] content_axes")
    return ClaimFile(
        path=path,
        id=_text(claim, "id"),
        description=claim.get("description", str, ""),
        marks=marks,
        base=base_name,
        second_base=second,
        operator=operator,
        system_prompt=system_prompt,
        random_direction=random_direction,
        train=_source(train, "prompts"),
        train_generator=_text(train, "generator"),
        fresh=fresh_source,
        fresh_generator=fresh_generator,
        judge=judged,
        reference=reference,
        humaneval=humaneval,
        budgets=Budgets(_count(budgets, "n_predict"), _count(budgets, "train", None), _count(budgets, "fresh", None),
                        _count(budgets, "reference", None), _count(budgets, "batch_size", 8),
                        _count(budgets, "chunk", 16)),
        expect=_expect(expect, _steps(second), {s: _not_applicable(s, operator, anchored) for s in STEPS}),
        backend=_backend(top.optional("generation"), operator),
    )
