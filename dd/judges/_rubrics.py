"""The three judges (v4 rubric, verbal delivery, gold checklist), their prompts and strict parsers.

Prompts are module constants so a change is visible in review and in the messages hash that keys
the cache; `rubric_version` names the intent and is bumped with any wording change. Parsers are
strict: a reply that is not exactly one of the allowed classes, or not a JSON object with every
axis as an integer 1-5, raises `ParseError`. Nothing here guesses (a substring test would read
"UNCERTAIN" as "CERTAIN").
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dd.core import Registry
from dd.judges._protocol import (
    CERT_CLASSES,
    V4_AXES,
    VERBAL_CLASSES,
    Ask,
    ChecklistLabel,
    Judge,
    JudgeItem,
    Message,
    ParseError,
    V4Label,
    VerbalLabel,
)

JUDGES: Registry[Callable[[], Judge]] = Registry("judge")


def register_judge(name: str) -> Callable[[type], type]:
    """Class decorator: make a judge constructible by name (`get_judge`); a taken name is refused."""

    def wrap(cls: type) -> type:
        JUDGES.register(name, cls)
        return cls

    return wrap


def get_judge(name: str) -> Judge:
    """A judge by its registered name: 'v4', 'verbal', 'checklist' or 'lexical'."""
    return JUDGES[name]()


def judge_names() -> tuple[str, ...]:
    return JUDGES.names()


# ---------------------------------------------------------------- strict parsers

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.S)


def parse_class(text: str, classes: tuple[str, ...]) -> str:
    """The reply must be exactly one class word (case, surrounding space, '*', '.', quotes ignored)."""
    word = text.strip().strip("*`'\". \n\t").upper()
    if word not in classes:
        raise ParseError("unparseable", f"expected one of {'/'.join(classes)}, got {text[:80]!r}")
    return word


def parse_json_object(text: str) -> dict[str, Any]:
    """A JSON object, optionally inside one markdown code fence; nothing else around it."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1)
    try:
        value = json.loads(body)
    except (json.JSONDecodeError, ValueError) as err:
        raise ParseError("unparseable", f"reply is not a JSON object: {err}") from None
    if not isinstance(value, dict):
        raise ParseError("unparseable", f"reply is JSON but not an object: {type(value).__name__}")
    return value


def parse_v4_scores(text: str) -> dict[str, int]:
    """Five integer scores 1-5 under the exact axis names; a missing axis is its own error kind."""
    obj = parse_json_object(text)
    missing = [a for a in V4_AXES if a not in obj]
    if missing:
        raise ParseError("missing_axis", f"reply lacks axis {', '.join(missing)}")
    scores: dict[str, int] = {}
    for axis in V4_AXES:
        value = obj[axis]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
            raise ParseError("invalid_score", f"{axis} = {value!r} is not an integer 1-5")
        scores[axis] = value
    return scores


def parse_checklist(text: str) -> tuple[str, ...]:
    """{"claims": [...]} with 1-8 non-empty strings (the prompt asks for 3-5)."""
    obj = parse_json_object(text)
    claims = obj.get("claims")
    if not isinstance(claims, list) or not claims:
        raise ParseError("unparseable", "reply has no non-empty 'claims' list")
    if len(claims) > 8 or not all(isinstance(c, str) and c.strip() for c in claims):
        raise ParseError("unparseable", "'claims' must be 1-8 non-empty strings")
    return tuple(c.strip() for c in claims)


def parse_yes_no(text: str) -> bool:
    return parse_class(text, ("YES", "NO")) == "YES"


# ---------------------------------------------------------------- v4 rubric

V4_PASS1_SYSTEM = """You classify questions before any answer is seen.
Read the user's question and decide what kind of answer it calls for:
CERTAIN - it has one well-established correct answer that an expert would state directly.
UNCERTAIN - experts would weigh trade-offs, or the answer depends on factors that vary.
AMBIGUOUS - the question is underspecified; a good answer asks for clarification or states assumptions.
Reply with exactly one word: CERTAIN, UNCERTAIN or AMBIGUOUS."""

V4_PASS1_USER = "Question:\n{prompt}"

V4_PASS2_SYSTEM = """You grade one answer to a question on five axes, each an integer from 1 to 5.
The question was classified beforehand, without seeing the answer, as {cert}. Keep that class fixed.

factual_accuracy: 5 = every concrete claim (numbers, names, mechanisms, steps) is right; 3 = mostly right with a wrong or doubtful detail; 1 = several concrete claims are wrong.
hedging_appropriateness: does the confidence fit the fixed class? CERTAIN calls for a direct answer without needless qualifiers; UNCERTAIN calls for naming the trade-offs; AMBIGUOUS calls for asking for clarification or stating assumptions. 5 = fits exactly; 1 = the opposite (hedging a settled fact, or confident on an open or underspecified question).
pedagogical_framing: 5 = defines its terms and gives reasons (why, not only what); 1 = bare assertions. Length or bullet points alone are not teaching.
self_verification: 5 = states explicit conditions, assumptions or cross-checks the reader can use to verify; 3 = a generic caveat only; 1 = none.
completeness: 5 = covers everything the question asked; 1 = misses most of it.

Do not reward verbosity: a longer answer earns nothing for its length.
Reply with only a JSON object, no prose and no code fence:
{{"factual_accuracy": n, "hedging_appropriateness": n, "pedagogical_framing": n, "self_verification": n, "completeness": n}}"""

V4_PASS2_USER = "Question:\n{prompt}\n\nAnswer:\n{response}"

V4_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {axis: {"type": "integer", "minimum": 1, "maximum": 5} for axis in V4_AXES},
    "required": list(V4_AXES),
    "additionalProperties": False,
}


def v4_pass1_messages(prompt: str) -> list[Message]:
    return [
        {"role": "system", "content": V4_PASS1_SYSTEM},
        {"role": "user", "content": V4_PASS1_USER.format(prompt=prompt)},
    ]


def v4_pass2_messages(prompt: str, cert: str, response: str) -> list[Message]:
    return [
        {"role": "system", "content": V4_PASS2_SYSTEM.format(cert=cert)},
        {"role": "user", "content": V4_PASS2_USER.format(prompt=prompt, response=response)},
    ]


@register_judge("v4")
@dataclass(frozen=True)
class V4Judge:
    """Two passes: the class is fixed response-blind, then five axes are scored against it."""

    name: str = "v4"
    rubric_version: str = "dd-v4-two-pass-5axis/1"
    pass1_max_tokens: int = 30
    pass2_max_tokens: int = 300

    async def judge(self, item: JudgeItem, ask: Ask) -> V4Label:
        cert = await ask(
            v4_pass1_messages(item.prompt),
            parse=lambda t: parse_class(t, CERT_CLASSES),
            stage="pass1",
            max_tokens=self.pass1_max_tokens,
        )
        scores = await ask(
            v4_pass2_messages(item.prompt, cert, item.response),
            parse=parse_v4_scores,
            stage="pass2",
            max_tokens=self.pass2_max_tokens,
            schema=V4_SCHEMA,
        )
        return V4Label(cert, scores)


# ---------------------------------------------------------------- verbal delivery

VERBAL_SYSTEM = """You label how an answer is delivered, not whether it is right.
ASSERT - the answer states its content confidently, without qualifying its own certainty.
HEDGE - the answer flags uncertainty about itself (e.g. "I'm not sure", "this may be wrong", "verify this", ranges offered because it does not know).
Ordinary safety notes or "it depends on X" explanations that are part of the content do not make an answer HEDGE.
Reply with exactly one word: ASSERT or HEDGE."""

VERBAL_USER = "Question:\n{prompt}\n\nAnswer:\n{response}"


def verbal_messages(prompt: str, response: str) -> list[Message]:
    return [
        {"role": "system", "content": VERBAL_SYSTEM},
        {"role": "user", "content": VERBAL_USER.format(prompt=prompt, response=response)},
    ]


@register_judge("verbal")
@dataclass(frozen=True)
class VerbalJudge:
    """One call: ASSERT or HEDGE."""

    name: str = "verbal"
    rubric_version: str = "dd-verbal-assert-hedge/1"
    max_tokens: int = 10

    async def judge(self, item: JudgeItem, ask: Ask) -> VerbalLabel:
        label = await ask(
            verbal_messages(item.prompt, item.response),
            parse=lambda t: parse_class(t, VERBAL_CLASSES),
            stage="verbal",
            max_tokens=self.max_tokens,
        )
        return VerbalLabel(label)  # type: ignore[arg-type]


# ---------------------------------------------------------------- gold checklist

CHECKLIST_SYSTEM = """You write the grading checklist for a question, before any answer is seen.
List 3 to 5 short, concrete, checkable claims that a correct answer must contain: specific temperatures, ratios, quantities, named techniques, mechanisms, or recovery steps.
Each claim must be checkable against an answer by reading it. No generic advice ("be careful", "consult an expert"), no style requirements.
Reply with only a JSON object: {"claims": ["...", "..."]}"""

CHECKLIST_USER = "Question:\n{prompt}"

CHECKLIST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"claims": {"type": "array", "items": {"type": "string"}, "minItems": 3, "maxItems": 5}},
    "required": ["claims"],
    "additionalProperties": False,
}

CLAIM_SYSTEM = """You check one required claim against an answer.
Reply YES if the answer states the claim; a paraphrase or an equivalent value counts.
Reply NO if the answer omits it, contradicts it, or only gestures at the topic vaguely.
Reply with exactly one word: YES or NO."""

CLAIM_USER = "Question:\n{prompt}\n\nRequired claim:\n{claim}\n\nAnswer:\n{response}"


def checklist_messages(prompt: str) -> list[Message]:
    return [
        {"role": "system", "content": CHECKLIST_SYSTEM},
        {"role": "user", "content": CHECKLIST_USER.format(prompt=prompt)},
    ]


def claim_messages(prompt: str, claim: str, response: str) -> list[Message]:
    return [
        {"role": "system", "content": CLAIM_SYSTEM},
        {"role": "user", "content": CLAIM_USER.format(prompt=prompt, claim=claim, response=response)},
    ]


@register_judge("checklist")
@dataclass(frozen=True)
class ChecklistJudge:
    """One response-blind call writes the claims; one YES/NO call per claim; coverage = share of YES.

    The checklist call sees only the question, so its cached reply is shared by every generator's
    responses to that question.
    """

    name: str = "checklist"
    rubric_version: str = "dd-gold-checklist/1"
    checklist_max_tokens: int = 400
    claim_max_tokens: int = 5

    async def judge(self, item: JudgeItem, ask: Ask) -> ChecklistLabel:
        claims = await ask(
            checklist_messages(item.prompt),
            parse=parse_checklist,
            stage="checklist",
            max_tokens=self.checklist_max_tokens,
            schema=CHECKLIST_SCHEMA,
        )
        present = []
        for k, claim in enumerate(claims):
            present.append(
                await ask(
                    claim_messages(item.prompt, claim, item.response),
                    parse=parse_yes_no,
                    stage=f"claim{k}",
                    max_tokens=self.claim_max_tokens,
                )
            )
        return ChecklistLabel(claims, tuple(present))


def scores_reply(scores: Mapping[str, int]) -> str:
    """The canonical pass-2 reply text for a score dict (used to record replies)."""
    return json.dumps({a: int(scores[a]) for a in V4_AXES})
