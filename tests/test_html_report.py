"""The HTML report: one self-contained page, checked in a real (headless) browser, and `dd report diff`.

The browser test loads the page with filters in its address, counts the rows the page's own
script rendered, requires a console free of errors, and keeps a screenshot: in `$DD_SCREENSHOTS`
when set (CI keeps that folder), else in the test's temporary folder.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from dd.cli import main
from dd.pytest import diff_reports, draw_figures, write_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_browser = pytest.mark.skipif(CHROMIUM is None, reason="needs headless Chromium: apt-get install -y chromium")


def entry(nodeid, claim, verdict, outcome, base="smollm2-135m", operator="sidecar-logreg-C1.0", step="fresh", **metrics):
    return {"nodeid": nodeid, "claim": claim, "base": base, "operator": operator, "step": step, "source": "recomputed",
            "metrics": metrics, "paper": {"auc": 0.509}, "gate": {"name": "fresh", "version": "v1", "auc_min": 0.63},
            "verdict": verdict, "reasons": [f"{claim} </script> reason"], "outcome": outcome}


@pytest.fixture
def report():
    results = [
        entry("t::a[1]", "arc3.step1.cv", "fail", "xfailed", step="cv", auc=0.55, cv_auc=0.55, auc_ci_low=0.5,
              auc_ci_high=0.6),
        entry("t::a[2]", "arc3.step2.fresh", "fail", "xfailed", auc=0.45, auc_ci_low=0.4, auc_ci_high=0.5),
        entry("t::b", "arc1.humaneval", "pass", "passed", base="qwen3-0.6b", operator="lora", delta=0.1),
        entry("t::c", "arc2.attr", "inconclusive", "error", base="gemma4-e2b", operator="frozen"),
    ]
    return {"schema": "dd-report/1", "environment": {"dd": "0", "python": "3", "torch": "2", "transformers": "5",
                                                     "sklearn": "1"}, "results": results}


def test_the_page_is_self_contained(report, tmp_path):
    path = tmp_path / "r.html"
    write_html(path, report, draw_figures(report["results"], {}))
    page = path.read_text()
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", page), "the page must not load anything from a network"
    assert "data:image/png;base64," in page
    embedded = re.search(r'<script type="application/json" id="dd-report">(.*?)</script>', page, re.S).group(1)
    assert json.loads(embedded.replace("<\\/", "</")) == report


@needs_browser
def test_the_page_renders_and_filters_in_a_browser(report, tmp_path):
    path = tmp_path / "r.html"
    write_html(path, report, draw_figures(report["results"], {}))
    shots = Path(os.environ.get("DD_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)

    def chromium(*args, fragment=""):
        proc = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                               "--v=0", *args, f"{path.as_uri()}{fragment}"], capture_output=True, text=True, timeout=120)
        console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
        assert not console, console
        return proc

    rows = lambda dom: re.findall(r'<tr class="claim outcome-(\w+)"', dom)  # noqa: E731
    assert sorted(rows(chromium("--dump-dom").stdout)) == ["error", "passed", "xfailed", "xfailed"]
    assert rows(chromium("--dump-dom", fragment="#verdict=fail").stdout) == ["xfailed", "xfailed"]
    assert rows(chromium("--dump-dom", fragment="#arc=arc1").stdout) == ["passed"]
    assert "1 of 4 entries" in chromium("--dump-dom", fragment="#outcome=error").stdout
    shot = shots / "report.png"
    chromium(f"--screenshot={shot}", "--window-size=1400,1000")
    assert shot.read_bytes()[:4] == b"\x89PNG"


def test_report_html_command(report, tmp_path, capsys):
    src, out = tmp_path / "r.json", tmp_path / "r.html"
    src.write_text(json.dumps(report))
    assert main(["report", "html", str(src), "-o", str(out)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_report_diff_exits_nonzero_on_a_verdict_change(report, tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(report))
    changed = json.loads(json.dumps(report))
    changed["results"][0]["verdict"], changed["results"][0]["outcome"] = "pass", "xpassed"
    changed["results"][1]["metrics"]["auc"] = 0.46
    b.write_text(json.dumps(changed))
    assert main(["report", "diff", str(a), str(a)]) == 0
    assert "no changes" in capsys.readouterr().out
    assert main(["report", "diff", str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "t::a[1]: fail -> pass" in out and "t::a[1]: xfailed -> xpassed" in out and "auc 0.45 -> 0.46" in out


def test_diff_of_numbers_only_does_not_fail(report):
    changed = json.loads(json.dumps(report))
    changed["results"][1]["metrics"]["auc"] += 1e-12
    assert not diff_reports(report, changed).numbers
    changed["results"][1]["metrics"]["auc"] = 0.5
    diff = diff_reports(report, changed)
    assert diff.numbers and not diff.verdict_changed


def test_report_diff_refuses_a_file_that_is_not_a_report(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "other"}')
    with pytest.raises(SystemExit, match="not a dd-report/1 file"):
        main(["report", "diff", str(bad), str(bad)])
