"""Long work shows a bar on the user's terminal under pytest's capture and under xdist, and none
with `-q -q` or when the output is not a terminal (a CI log).

A pseudo-terminal from util-linux `script` stands in for the user's terminal.
"""

import shutil
import subprocess
import sys
import textwrap

import pytest

SCRIPT = shutil.which("script")
pytestmark = pytest.mark.skipif(SCRIPT is None, reason="needs util-linux `script` for a pseudo-terminal")

SLOW_WORK = """
    import time
    from dd.core import progress

    def test_long_work():
        bar = progress(12, "features demo")
        for _ in range(12):
            time.sleep(0.1)
            bar.update(1)
        bar.close()
"""


def run(tmp_path, *args, tty: bool) -> str:
    (tmp_path / "test_work.py").write_text(textwrap.dedent(SLOW_WORK))
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", *args, "test_work.py"]
    if not tty:
        proc = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        return proc.stdout + proc.stderr
    log = tmp_path / "tty.log"
    subprocess.run([SCRIPT, "-qec", " ".join(command), str(log)], cwd=tmp_path, capture_output=True, timeout=120,
                   check=True)
    return log.read_text(errors="replace")


def test_a_bar_shows_under_capture(tmp_path):
    assert "features demo:" in run(tmp_path, "-q", tty=True)


def test_a_bar_shows_under_xdist_with_the_worker_id(tmp_path):
    assert "[gw0] features demo:" in run(tmp_path, "-q", "-n", "1", tty=True)


def test_no_bar_when_very_quiet(tmp_path):
    assert "features demo" not in run(tmp_path, "-q", "-q", tty=True)


def test_no_bar_in_a_log(tmp_path):
    assert "features demo" not in run(tmp_path, "-q", tty=False)
