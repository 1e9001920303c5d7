"""Run untrusted, model-written programs in a separate, contained process.

HumanEval scoring executes code a model wrote. The containment is layered so that no single
layer has to be perfect:

1. A fresh ``python -I -B`` process: isolated mode, empty environment but a minimal ``PATH``,
   stdin at EOF, a temporary working directory deleted afterwards, its own session so the whole
   process group can be killed, and a wall-clock timeout.
2. rlimits set before ``exec``: CPU seconds, address space, file size, process count.
3. A guard installed in the child before the candidate runs (:func:`_install_guard`): no process
   creation, no signals to other processes, no sockets, no writes outside the working directory.
4. Where ``unshare`` works (probed once, cached): new user, network, mount and PID namespaces.
   No network interface is up, every mount but the working directory is read-only, and when the
   namespace's first process exits the kernel kills everything left inside it.

Layer 3 is Python-level and a determined adversary could dodge it; layers 1, 2 and 4 are
enforced by the kernel. :class:`RunResult.isolation` says whether layer 4 was available.
"""

import functools
import inspect
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Literal

Status = Literal["passed", "failed", "timeout", "error"]
Isolation = Literal["namespaces", "network", "none"]

MINIMAL_PATH = "/usr/bin:/bin"
_PROGRAM_FILE = "candidate.py"
_DRIVER_FILE = "driver.py"
# Child exit codes (see _child_main): 0 passed, 1 an assertion failed, 2 any other exception,
# 3 the guard blocked an operation.
_EXIT_DETAIL = {2: "exception", 3: "blocked by sandbox guard"}

# Run as the namespace's first process: make every writable mount read-only except the working
# directory ($1), re-enter it (the inherited cwd lies on the read-only mount), then run the
# driver as a child so that its exit tears the namespace down.
_NAMESPACE_SCRIPT = r"""
mount --bind "$1" "$1" && cd "$1" || exit 90
for m in $(awk '$6 ~ /(^|,)rw(,|$)/ {print $5}' /proc/self/mountinfo); do
  [ "$m" = "$1" ] || mount -o remount,bind,ro "$m" 2>/dev/null
done
shift
"$@"
"""


@dataclass(frozen=True)
class Limits:
    """Resource bounds for one program.

    Attributes:
        timeout_s: Wall-clock limit; the process group is killed when it is reached.
        memory_bytes: RLIMIT_AS, so a huge allocation fails with MemoryError.
        file_bytes: RLIMIT_FSIZE, caps every file written, captured output included.
        nproc: RLIMIT_NPROC; bites only for unprivileged users, hence the guard as well.
        max_output_bytes: How much of stdout and stderr each is kept in the result.
    """

    timeout_s: float = 10.0
    memory_bytes: int = 1 << 30
    file_bytes: int = 10 << 20
    nproc: int = 32
    max_output_bytes: int = 8 << 10


@dataclass(frozen=True)
class RunResult:
    """What happened to one program.

    Attributes:
        status: ``passed`` (exit 0), ``failed`` (an assertion failed), ``timeout`` or ``error``.
        returncode: The raw exit status (negative: killed by that signal); None on timeout.
        detail: One line on why it did not pass; empty when it passed.
        stdout: Captured standard output, truncated to ``Limits.max_output_bytes``.
        stderr: Captured standard error, truncated likewise.
        duration_s: Wall-clock seconds.
        isolation: Which namespace layer was in force.
    """

    status: Status
    returncode: int | None
    detail: str
    stdout: str
    stderr: str
    duration_s: float
    isolation: Isolation


def _install_guard(root: str) -> type:
    """Disable process creation, signalling, sockets and writes outside ``root``.

    Runs inside the child (its source is shipped there), so it must be self-contained. Returns
    the exception class it raises, so the driver can tell a blocked operation apart.
    """
    import _io
    import builtins
    import io
    import os
    import posix
    import socket
    import sys

    class SandboxViolation(PermissionError):
        """An operation the sandbox does not allow."""

    SandboxViolation.__qualname__ = "SandboxViolation"

    root = os.path.realpath(root)
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def check_path(path) -> None:
        if isinstance(path, int):
            return
        real = os.path.realpath(os.fsdecode(os.fspath(path)))
        if os.path.commonpath([root, real]) != root:
            raise SandboxViolation(f"write outside the sandbox directory: {real}")

    def check_no_dir_fd(kwargs) -> None:
        if any(kwargs.get(k) is not None for k in ("dir_fd", "src_dir_fd", "dst_dir_fd")):
            raise SandboxViolation("dir_fd is disabled in the sandbox")

    def denied(name):
        def deny(*args, **kwargs):
            raise SandboxViolation(f"{name} is disabled in the sandbox")

        return deny

    def paths_guarded(fn, n_paths):
        def guarded(*args, **kwargs):
            check_no_dir_fd(kwargs)
            for path in args[:n_paths]:
                check_path(path)
            return fn(*args, **kwargs)

        return guarded

    def open_guarded(fn):
        def guarded(file, mode="r", *args, **kwargs):
            if any(c in mode for c in "wax+"):
                check_path(file)
            return fn(file, mode, *args, **kwargs)

        return guarded

    raw_open = posix.open

    def os_open(path, flags, mode=0o777, *, dir_fd=None):
        if flags & write_flags:
            check_no_dir_fd({"dir_fd": dir_fd})
            check_path(path)
        return raw_open(path, flags, mode, dir_fd=dir_fd)

    class FileIO(_io.FileIO):
        def __init__(self, file, mode="r", *args, **kwargs):
            if any(c in mode for c in "wax+"):
                check_path(file)
            super().__init__(file, mode, *args, **kwargs)

    def patch(modules, name, value) -> None:
        for module in modules:
            if hasattr(module, name):
                setattr(module, name, value)

    os_modules = (os, posix)
    for name in (
        "fork", "forkpty", "system", "popen", "posix_spawn", "posix_spawnp",
        "execv", "execve", "execl", "execle", "execlp", "execlpe", "execvp", "execvpe",
        "spawnv", "spawnve", "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnvp", "spawnvpe",
        "kill", "killpg", "setsid", "setpgid", "setpgrp", "_exit", "abort",
        "chdir", "fchdir", "chroot", "symlink", "link", "mkfifo", "mknod",
        "setuid", "setgid", "seteuid", "setegid", "setreuid", "setregid",
    ):  # fmt: skip
        patch(os_modules, name, denied(f"os.{name}"))
    for name, n_paths in (
        ("remove", 1), ("unlink", 1), ("rmdir", 1), ("mkdir", 1), ("rename", 2), ("replace", 2),
        ("chmod", 1), ("chown", 1), ("lchown", 1), ("truncate", 1), ("utime", 1),
        ("removedirs", 1), ("renames", 2), ("makedirs", 1),
    ):  # fmt: skip
        if hasattr(os, name):
            patch(os_modules, name, paths_guarded(getattr(os, name), n_paths))
    patch(os_modules, "open", os_open)
    builtins.open = io.open = _io.open = open_guarded(_io.open)
    patch((io, _io), "FileIO", FileIO)

    import _posixsubprocess
    import signal

    _posixsubprocess.fork_exec = denied("subprocess")
    patch((signal,), "pidfd_send_signal", denied("signal.pidfd_send_signal"))
    for name in ("socket", "socketpair", "fromfd", "create_connection", "create_server"):
        patch((socket,), name, denied(f"socket.{name}"))
    import _socket

    patch((_socket,), "socket", denied("socket.socket"))
    patch((_socket,), "socketpair", denied("socket.socketpair"))
    for name in ("ctypes", "_ctypes", "resource", "pty", "multiprocessing", "_multiprocessing"):
        # `import name` now raises ImportError: a None entry is the import system's documented block,
        # which typeshed's `dict[str, ModuleType]` for sys.modules does not admit.
        sys.modules[name] = None  # type: ignore[assignment]
    return SandboxViolation


def _child_main(guard: bool) -> None:
    """Driver run inside the sandbox: read, guard, exec, and report through the exit code."""
    import os
    import sys
    import traceback

    exit_now = os._exit  # kept before the guard disables it for the candidate
    with open("candidate.py", encoding="utf-8") as f:
        source = f.read()
    violation = _install_guard(os.getcwd()) if guard else ()
    try:
        exec(compile(source, "candidate.py", "exec"), {"__name__": "__candidate__"})
        code = 0
    except BaseException as e:  # SystemExit too: exit(0) before the tests is not a pass
        code = 1 if isinstance(e, AssertionError) else 3 if isinstance(e, violation) else 2
        traceback.print_exception(e)
    sys.stdout.flush()
    sys.stderr.flush()
    exit_now(code)


@functools.cache
def _driver_source() -> str:
    parts = (inspect.getsource(_install_guard), inspect.getsource(_child_main))
    return "\n\n".join(parts) + "\n\nimport sys\n_child_main(sys.argv[1] == '1')\n"


def _namespace_argv(workdir: str) -> list[str]:
    return ["unshare", "-rnmpf", "--kill-child", "sh", "-c", _NAMESPACE_SCRIPT, "sh", workdir]


@functools.cache
def isolation_level() -> Isolation:
    """Probe once which ``unshare`` layer works here: namespaces, network only, or none."""
    if shutil.which("unshare", path=MINIMAL_PATH) is None:
        return "none"
    with tempfile.TemporaryDirectory(prefix="dd-probe-") as workdir:
        probes: tuple[tuple[Isolation, list[str]], ...] = (
            ("namespaces", [*_namespace_argv(workdir), "true"]),
            ("network", ["unshare", "-rn", "true"]),
        )
        for level, argv in probes:
            try:
                probe = subprocess.run(
                    argv, env={"PATH": MINIMAL_PATH}, cwd=workdir, capture_output=True, timeout=10
                )
            except (OSError, subprocess.TimeoutExpired):
                continue
            if probe.returncode == 0:
                return level
    return "none"


def _set_limits(limits: Limits) -> None:
    cpu = math.ceil(limits.timeout_s) + 1
    for which, value in (
        (resource.RLIMIT_CPU, cpu),
        (resource.RLIMIT_AS, limits.memory_bytes),
        (resource.RLIMIT_FSIZE, limits.file_bytes),
        (resource.RLIMIT_NPROC, limits.nproc),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(which, (value, value))


def _read_capped(f, cap: int) -> str:
    f.seek(0, os.SEEK_END)
    size = f.tell()
    f.seek(0)
    text = f.read(cap).decode("utf-8", errors="replace")
    return text + (f"\n[... {size - cap} more bytes truncated]" if size > cap else "")


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _classify(returncode: int | None, stderr: str) -> tuple[Status, str]:
    if returncode is None:
        return "timeout", "wall-clock timeout"
    if returncode == 0:
        return "passed", ""
    last_line = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    if returncode == 1:
        return "failed", last_line or "AssertionError"
    if returncode in _EXIT_DETAIL:
        return "error", f"{_EXIT_DETAIL[returncode]}: {last_line}"
    # Signals reach us as -N directly, or as 128+N through the namespace's shell.
    signum = -returncode if returncode < 0 else returncode - 128
    if 0 < signum < 65:
        return "error", f"killed by {signal.Signals(signum).name}"
    return "error", f"exit status {returncode}"


def run_program(program: str, *, limits: Limits = Limits(), guard: bool = True) -> RunResult:
    """Run ``program`` (candidate + tests + check call) once, contained.

    Args:
        program: Python source; it passes by running to the end without an exception.
        limits: Resource bounds.
        guard: Install the in-process guard. False only to test the kernel-level layers alone.

    Returns:
        The outcome; a hostile or broken program yields ``error``/``timeout``, never an
        exception here.
    """
    isolation = isolation_level()
    workdir = tempfile.mkdtemp(prefix="dd-sandbox-")
    try:
        with open(os.path.join(workdir, _PROGRAM_FILE), "w", encoding="utf-8") as f:
            f.write(program)
        with open(os.path.join(workdir, _DRIVER_FILE), "w", encoding="utf-8") as f:
            f.write(_driver_source())
        python = [sys.executable, "-I", "-B", _DRIVER_FILE, "1" if guard else "0"]
        argv = {
            "namespaces": [*_namespace_argv(workdir), *python],
            "network": ["unshare", "-rn", *python],
            "none": python,
        }[isolation]
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            start = time.monotonic()
            proc = subprocess.Popen(
                argv,
                cwd=workdir,
                env={"PATH": MINIMAL_PATH},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                preexec_fn=functools.partial(_set_limits, limits),
            )
            try:
                returncode: int | None = proc.wait(timeout=limits.timeout_s)
            except subprocess.TimeoutExpired:
                returncode = None
            finally:
                _kill_group(proc.pid)  # also reaps stray children left in the group
                proc.wait()
            duration = time.monotonic() - start
            stdout = _read_capped(out, limits.max_output_bytes)
            stderr = _read_capped(err, limits.max_output_bytes)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    status, detail = _classify(returncode, stderr)
    return RunResult(status, returncode, detail, stdout, stderr, duration, isolation)


def run_programs(
    programs: Sequence[str], *, limits: Limits = Limits(), workers: int = 1
) -> list[RunResult]:
    """Run several programs, in order, with up to ``workers`` in parallel.

    Parallel runs use forked worker processes rather than threads, because ``preexec_fn``
    (which sets the rlimits) is not safe in a multi-threaded parent; fork, unlike spawn, needs
    no ``if __name__ == "__main__"`` guard in the calling script.
    """
    if workers <= 1 or len(programs) <= 1:
        return [run_program(p, limits=limits) for p in programs]
    run = functools.partial(run_program, limits=limits)
    with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
        return list(pool.map(run, programs))
