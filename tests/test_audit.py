"""The data audit before training (dd.arcs._audit): code share, essays, style uniformity, the code-domain warning."""

from __future__ import annotations

import pytest

from dd.arcs import audit_responses, content_variance, has_code, is_essay, marker_counts
from dd.protocol import bars

CODE = "Here it is:\n\n```python\ndef add(a, b):\n    return a + b\n```\n"
BROKEN = "```python\ndef add(a, b)\n    return a +\n```"
ESSAY = ("## Understanding recursion\n\n" + "Recursion is a way to think about problems. " * 30
         + "\n\n- **Base case**: stops it.\n- **Step**: shrinks the problem.\n\n```python\nfor x in\n```\n")


def test_code_is_a_block_that_parses():
    assert has_code(CODE)
    assert not has_code(BROKEN)
    assert not has_code("def add(a, b): return a + b")  # no fence
    assert not has_code("```python\n\n```")
    assert has_code("```\nx = 1\n```")  # an unlabelled block that parses counts


def test_essay_and_markers():
    counts = marker_counts(ESSAY)
    assert counts["heading"] == 1 and counts["bullet"] == 2 and counts["bold"] == 2 and counts["fence"] == 1
    assert is_essay(ESSAY, min_markers=3, min_words=120)
    assert not is_essay(CODE, min_markers=3, min_words=120)
    assert not has_code(ESSAY)  # its only block does not parse


def test_a_set_of_essays_about_code_warns_for_a_code_domain():
    train = [ESSAY] * 9 + [CODE]
    audit = audit_responses(train, name="teachers", domain="code")
    assert audit.code_share == pytest.approx(0.1) and audit.essay_share == pytest.approx(0.9)
    assert audit.verdict.verdict == "fail" and audit.verdict.code == "training_set_not_code"
    assert "90% are markdown essays" in audit.verdict.reasons[0]
    assert audit.verdict.gate["min_code_share"] == bars("audit")["min_code_share"]
    # the same set is no warning for another evaluation domain
    assert audit_responses(train, domain="chat").verdict.passed
    assert audit_responses([CODE] * 3, domain="code").verdict.passed


def test_style_uniformity_and_content_variance():
    template = [f"Great question! Let me explain {topic}.\n\n- one\n- two" for topic in ("loops", "lists", "maps")]
    varied = ["Loops repeat work.", "**Lists** hold items in order:\n- a\n- b\n- c", "# Maps\nKeys to values."]
    uniform, mixed = audit_responses(template), audit_responses(varied)
    assert uniform.top_openings[0] == ("great question let", 3) and uniform.opening_share == 1.0
    assert uniform.markers["bullet"] == (2.0, 0.0)  # every response the same structure: no spread
    assert mixed.markers["bullet"][1] > 0
    assert content_variance(template) < content_variance(varied)
    assert content_variance(["same words"] * 4) == pytest.approx(0.0)
    metrics = uniform.metrics()
    assert metrics["audit.train.opening_pct"] == 100 and "audit.train.marker.bullet.std" in metrics
    with pytest.raises(ValueError, match="no responses"):
        audit_responses([])
