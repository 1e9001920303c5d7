"""The sandbox contains hostile programs: each is scored as a non-pass and the runner goes on.

Every hostile case runs with the in-process guard (the default) and, where the kernel layers
exist, once more with the guard off, so each layer is shown to hold on its own.
"""

import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from dd.arcs import Limits, isolation_level, run_program

FAST = Limits(timeout_s=2.0)
GUARDS = [
    pytest.param(True, id="guard"),
    pytest.param(
        False,
        id="kernel-only",
        marks=pytest.mark.skipif(
            isolation_level() != "namespaces", reason="needs unshare namespaces"
        ),
    ),
]


def _sandbox_dirs() -> set[str]:
    return {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("dd-sandbox-")}


def _processes_with(token: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if token.encode() in cmdline:
            found.append(int(pid))
    return found


@pytest.fixture
def victim():
    """A process outside the sandbox, in its own session, that hostile code tries to kill."""
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


def test_clean_program_passes_and_leaves_nothing_behind(tmp_path, monkeypatch):
    # a temporary folder of this test's own: another xdist worker's sandboxes come and go in /tmp
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = run_program("print('hello')\nassert 1 + 1 == 2\n", limits=FAST)
    assert (result.status, result.returncode, result.stdout) == ("passed", 0, "hello\n")
    assert _sandbox_dirs() == set()


def test_failed_assertion_is_failed_not_error():
    result = run_program("assert 1 == 2, 'wrong answer'", limits=FAST)
    assert result.status == "failed"
    assert "wrong answer" in result.detail


@pytest.mark.parametrize(
    "exit_call", ["exit(0)", "import sys; sys.exit(0)", "import os; os._exit(0)"]
)
def test_exiting_early_cannot_fake_a_pass(exit_call):
    result = run_program(f"{exit_call}\nassert False\n", limits=FAST)
    assert result.status == "error"


def test_infinite_loop_times_out():
    start = time.monotonic()
    result = run_program("while True:\n    pass\n", limits=Limits(timeout_s=1.0))
    assert result.status == "timeout"
    assert time.monotonic() - start < 5


def test_fork_bomb_is_blocked():
    result = run_program("import os\nwhile True:\n    os.fork()\n", limits=FAST)
    assert result.status == "error"
    assert "os.fork is disabled" in result.detail


@pytest.mark.parametrize(
    "spawn",
    [
        "import subprocess; subprocess.run(['true'])",
        "import os; os.system('true')",
        "import os; os.execv('/bin/true', ['true'])",
        "import multiprocessing",
        "import ctypes",
    ],
)
def test_process_creation_is_blocked(spawn):
    assert run_program(spawn, limits=FAST).status == "error"


@pytest.mark.parametrize(
    "allocate",
    [
        "x = bytearray(4 * 1024**3)",
        "chunks = []\nwhile True:\n    chunks.append(bytearray(64 * 1024**2))",
    ],
    ids=["at-once", "gradual"],
)
def test_huge_allocation_hits_the_memory_limit(allocate):
    # a generous wall clock: under load, filling 1 GiB in 64 MiB steps can take over 2 s
    result = run_program(allocate, limits=Limits(timeout_s=15.0))
    assert result.status == "error"
    assert "MemoryError" in result.detail


def test_output_is_captured_and_truncated():
    limits = Limits(timeout_s=2.0, max_output_bytes=1000)
    result = run_program("print('x' * 1_000_000)", limits=limits)
    assert result.status == "passed"
    assert len(result.stdout) < 1100
    assert "truncated" in result.stdout


@pytest.mark.parametrize("guard", GUARDS)
@pytest.mark.parametrize(
    "write",
    [
        "open({target!r}, 'w').write('pwned')",
        "import pathlib; pathlib.Path({target!r}).write_text('pwned')",
        "import os; os.close(os.open({target!r}, os.O_CREAT | os.O_WRONLY))",
        "import shutil; shutil.copy('candidate.py', {target!r})",
        "import os; os.symlink({target!r}, 'link'); open('link', 'w').write('pwned')",
    ],
    ids=["open", "pathlib", "os.open", "shutil", "symlink"],
)
def test_writing_outside_its_directory_is_blocked(tmp_path, write, guard):
    target = tmp_path / "escaped.txt"
    result = run_program(write.format(target=str(target)), limits=FAST, guard=guard)
    assert result.status == "error"
    assert not target.exists()


def test_writing_inside_its_directory_is_allowed():
    program = "open('scratch.txt', 'w').write('ok')\nassert open('scratch.txt').read() == 'ok'\n"
    assert run_program(program, limits=FAST).status == "passed"


@pytest.mark.parametrize("guard", GUARDS)
def test_socket_cannot_reach_localhost(guard):
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(0.5)
        port = server.getsockname()[1]
        program = (
            "import socket\n"
            f"socket.create_connection(('127.0.0.1', {port}), timeout=1).sendall(b'hi')\n"
        )
        result = run_program(program, limits=FAST, guard=guard)
        with pytest.raises(TimeoutError):
            server.accept()
    assert result.status == "error"


def test_killing_its_parent_is_blocked_and_the_runner_survives():
    result = run_program("import os\nos.kill(os.getppid(), 9)\n", limits=FAST)
    assert result.status == "error"
    assert "os.kill is disabled" in result.detail


@pytest.mark.parametrize("guard", GUARDS)
@pytest.mark.parametrize("kill", ["os.kill({pid}, 9)", "os.killpg({pid}, 9)"])
def test_killing_outside_processes_fails(victim, kill, guard):
    program = f"import os\n{kill.format(pid=victim.pid)}\n"
    result = run_program(program, limits=FAST, guard=guard)
    assert result.status == "error"
    assert victim.poll() is None  # still alive


@pytest.mark.skipif(isolation_level() != "namespaces", reason="needs a PID namespace")
def test_escaped_background_process_dies_with_the_sandbox():
    token = f"{time.time_ns() % 10**6}.5"
    program = (
        "import os\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        f"    os.execv('/bin/sleep', ['sleep', '{token}'])\n"
    )
    result = run_program(program, limits=FAST, guard=False)
    assert result.status == "passed"
    deadline = time.monotonic() + 2
    while _processes_with(token) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_with(token) == []
