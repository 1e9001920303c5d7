"""The disposition asked for in words: the baseline every operator must beat.

If a system prompt alone gets the behaviour, a trained adapter or a head edit has shown nothing.
Chat templates without a system role (some raise, some drop it silently) get the instruction as a
prefix of the user turn instead; bases without a chat template get it before the plain prompt.
Generation renders these messages (``dd.lm.render_prompt(..., operator=op)``), so the arm and its
cache key both come from this object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dd.operators._protocol import KeyMixin
from dd.operators._registry import register_operator

HUMBLE = (
    "When you are not sure that your answer is correct, say so plainly; "
    "never state a guess as a fact."
)
_PROBE = "dd-system-probe-7f3a"


def supports_system_role(tokenizer: Any) -> bool:
    """Whether the chat template renders a system message (not raising, not dropping it)."""
    from jinja2 import TemplateError

    try:
        text = tokenizer.apply_chat_template(
            [{"role": "system", "content": _PROBE}, {"role": "user", "content": "x"}], tokenize=False
        )
    except (TemplateError, ValueError):  # raise_exception('System role not supported') and kin
        return False
    return _PROBE in text


@dataclass(frozen=True)
class SystemPromptSpec:
    """Attributes: text: the instruction; separator: between it and the prompt when prefixed."""

    text: str = HUMBLE
    separator: str = "\n\n"


@register_operator("system-prompt")
class SystemPrompt(KeyMixin):
    """Ask for the disposition in a system prompt (or a user-turn prefix)."""

    name = "system-prompt"
    kind = "prompt"

    def __init__(self, text: str = HUMBLE, separator: str = "\n\n") -> None:
        self.spec = SystemPromptSpec(text, separator)

    def messages(self, prompt: str, tokenizer: Any | None) -> list[dict[str, str]]:
        """The conversation for ``prompt``: system + user, or a prefixed user turn.

        ``tokenizer`` None (the plain format, no chat template) gets the prefixed user turn.
        """
        if tokenizer is not None and supports_system_role(tokenizer):
            return [{"role": "system", "content": self.spec.text}, {"role": "user", "content": prompt}]
        return [{"role": "user", "content": self.spec.text + self.spec.separator + prompt}]
