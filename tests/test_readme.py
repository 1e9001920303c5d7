"""The README's commands work as written, pasted in order into a fresh shell.

Every `pytest` and `dd` command in its bash blocks names only options and sub-commands that
exist; the environment they need is exported by the first block, never set inline on one line
only; CI runs the README's test command; and the quick commands run in a fresh shell after the
first block's exports.
"""

import os
import re
import shlex
import subprocess
import sys

import pytest

from dd.cli import build_parser
from dd.core import FLAGS, OPTIONS
from helpers import ROOT

README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```bash\n(.*?)```", README, re.S)
LINES = [line.strip() for block in BLOCKS for line in block.replace("\\\n", " ").splitlines()
         if line.strip() and not line.strip().startswith("#")]
DD_FLAGS = {flag for flag, _, _ in OPTIONS.values()} | {flag for flag, _, _ in FLAGS.values()}


def commands(program: str) -> list[list[str]]:
    """Each shell command of the README that runs `program`, as its words (comments dropped)."""
    out = []
    for line in LINES:
        for part in re.split(r"&&|;|\|", line.split(" #")[0]):
            words = shlex.split(part.strip().rstrip("&").strip())
            while words and "=" in words[0] and not words[0].startswith("-"):
                words = words[1:]  # leading VAR=value assignments
            if words and os.path.basename(words[0]) == program:
                out.append(words)
    return out


def test_the_first_block_exports_what_later_commands_need():
    first = BLOCKS[0]
    assert re.search(r"^export .*\bHF_HUB_OFFLINE=1\b", first, re.M)
    assert re.search(r"^export .*\bDD_ARTIFACTS=", first, re.M)
    assert "source .venv/bin/activate" in first
    inline = [line for line in LINES if re.match(r"^(HF_HUB_OFFLINE|DD_ARTIFACTS)=\S+ ", line)]
    assert not inline, f"set these once with export in the first block: {inline}"


def test_every_dd_option_named_in_a_command_exists():
    for words in commands("pytest"):
        unknown = [w.split("=")[0] for w in words if w.startswith("--dd-") and w.split("=")[0] not in DD_FLAGS]
        assert not unknown, (words, unknown)


def test_every_dd_command_parses():
    parser = build_parser()
    found = commands("dd")
    assert found
    for words in found:
        parser.parse_args(words[1:])  # exits (SystemExit) on an unknown command or option


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    ci_command = next(line for line in ci.splitlines() if "bin/pytest" in line).replace(".venv/bin/", "").strip()
    assert ci_command in [" ".join(shlex.quote(w) if " " in w else w for w in c) for c in commands("pytest")] or \
        any(ci_command == line for line in LINES), ci_command


def test_quick_commands_run_in_a_fresh_shell(tmp_path, artifact_root):
    exports = "\n".join(line for line in BLOCKS[0].splitlines() if line.startswith("export "))
    bindir = os.path.dirname(sys.executable)
    script = f"""
        set -e
        cd {shlex.quote(str(ROOT))}
        {exports}
        export DD_ARTIFACTS={shlex.quote(str(artifact_root))} DD_CACHE={shlex.quote(str(tmp_path / "cache"))}
        export PATH={shlex.quote(bindir)}:$PATH
        dd artifacts verify
        dd cache ls
        dd judge replay --port 0 > {shlex.quote(str(tmp_path / "replay.log"))} 2>&1 &
        for _ in $(seq 50); do grep -q http {shlex.quote(str(tmp_path / "replay.log"))} && break; sleep 0.2; done
        kill %1
        cat {shlex.quote(str(tmp_path / "replay.log"))}
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    proc = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "files verified" in proc.stdout and "replaying the paper's judge labels at http://127.0.0.1:" in proc.stdout


@pytest.mark.parametrize("words", commands("pytest"), ids=lambda w: " ".join(w)[:60])
def test_each_pytest_command_collects(words, artifact_root, tmp_path):
    """Each pytest command of the README parses its options and collects (it does not run).

    Outputs (report, page, figures) go to the test's folder, never into the checkout.
    """
    args, skip = [], None
    for w in words[1:]:
        if skip == "drop":
            skip = None
        elif skip == "output":
            args.append(str(tmp_path / os.path.basename(w)))
            skip = None
        elif w in ("-n", "--dist"):
            skip = "drop"  # xdist's options and their values: collection runs without workers
        elif w in ("--dd-report", "--dd-html", "--dd-figures"):
            args.append(w)
            skip = "output"
        else:
            args.append(w)
    proc = subprocess.run([sys.executable, "-m", "pytest", *args, "--collect-only", "-q", "-p", "no:xdist"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "DD_ARTIFACTS": str(artifact_root), "HF_HUB_OFFLINE": "1"})
    assert proc.returncode in (0, 5), proc.stdout[-2000:] + proc.stderr[-2000:]
