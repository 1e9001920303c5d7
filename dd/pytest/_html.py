"""The report as one self-contained HTML page: no network, no CDN, figures embedded.

The page carries the dd-report/1 JSON itself and renders it with a little plain JavaScript: a
claims table filtered by arc, base, operator and verdict (kept in the address, `#verdict=fail`,
so a filtered view can be shared) and sorted by any column, where each
claim opens to its metrics (guards grouped apart), the paper's values, the gate and its version,
the source, the reasons and the environment. It is written by `--dd-html` at the end of a run
and by `dd report html REPORT.json -o PAGE.html` after the fact.
"""

from __future__ import annotations

import base64
import html
import json
from functools import cache
from importlib import resources
from pathlib import Path

from dd.pytest._report import write_atomic


@cache
def _asset(name: str) -> str:
    """The page's style sheet and script, kept as files beside this module and inlined."""
    return resources.files("dd.pytest").joinpath(name).read_text(encoding="utf-8")


COLUMNS = (("arc", "arc"), ("claim", "claim"), ("base", "base"), ("operator", "operator"), ("step", "step"),
           (None, "measured"), (None, "paper"), ("verdict", "verdict"), ("outcome", "outcome"))
CAPTIONS = {"auc_collapse": "CV AUC against fresh AUC per base and operator, with bootstrap intervals and both gates",
            "smollm_fresh_pca": "SmolLM2-1.7B fresh h_last, first two principal components"}


def _counts(report: dict) -> str:
    counts: dict[str, int] = {}
    for e in report["results"]:
        counts[e["outcome"]] = counts.get(e["outcome"], 0) + 1
    return "".join(f'<span class="{html.escape(o)}">{n} {html.escape(o)}</span>' for o, n in sorted(counts.items()))


def _figure(name: str, png: bytes) -> str:
    data = base64.b64encode(png).decode()
    caption = html.escape(CAPTIONS.get(name, name))
    img = f'<img alt="{html.escape(name)}" src="data:image/png;base64,{data}">'
    return f"<figure>{img}<figcaption>{caption}</figcaption></figure>"


def render(report: dict, figures: dict[str, bytes]) -> str:
    """The page for one report and its figures (PNG bytes by name)."""
    env = " · ".join(f"{k} {v}" for k, v in report["environment"].items())
    payload = json.dumps(report).replace("</", "<\\/")
    heads = "".join(f'<th data-key="{k}">{label}</th>' if k else f"<th>{label}</th>" for k, label in COLUMNS)
    selects = "".join(f'<label>{f} <select id="f-{f}"><option value="">all</option></select></label>'
                      for f in ("arc", "base", "operator", "verdict", "outcome"))
    figs = "".join(_figure(n, png) for n, png in figures.items()) or '<p class="muted">no figures in this run</p>'
    schema = html.escape(report["schema"])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>dd report</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_asset("report.css")}</style></head>
<body><header><h1>dd: measured against the paper</h1>
<div class="env">{schema} · {html.escape(env)}</div></header>
<main><div class="counts">{_counts(report)}</div>
<section><h2>Claims</h2><div class="filters">{selects}<label>search <input id="f-text" type="search"></label>
<span id="shown" class="muted"></span></div>
<table id="claims"><thead><tr>{heads}</tr></thead><tbody id="claims-body"></tbody></table></section>
<section><h2>Figures</h2>{figs}</section></main>
<script type="application/json" id="dd-report">{payload}</script>
<script>{_asset("report.js")}</script></body></html>
"""


def write(path: Path, report: dict, figures: dict[str, bytes]) -> None:
    write_atomic(Path(path), render(report, figures))
