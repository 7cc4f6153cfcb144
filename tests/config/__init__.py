"""Helpers to run the real command line, shared by tests/config and tests/commands/test_main.py: `run_cli` in a
subprocess (the real thing, marked slow: it starts a Python), `run_main` in this process (the same `main`, argv and
streams, for the many cases where only the command's answer matters)."""

import io
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534
CLI_TIMEOUT = 30.0  # only catches a hang (108 Python start-ups at once needed 120 s; the matrix runs in-process now)


def run_cli(*args: str, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """`python -m pvmonit_exporter ARGS…` in a subprocess; stdout and stderr captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "pvmonit_exporter", *args],
        cwd=ROOT, capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=timeout,
        check=False,
    )


def run_main(*args: str) -> subprocess.CompletedProcess[str]:
    """`cli.main(ARGS)` in this process, stdout and stderr captured: `run_cli`'s answer without a Python start-up.
    Only for commands that return by themselves (check-config, or a command refusing its input): `run` on a valid
    file would serve here for ever."""
    from pvmonit_exporter.commands import main as cli

    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    handlers = root.handlers[:]  # `main` configures logging on the captured stderr: undone afterwards
    with redirect_stdout(out), redirect_stderr(err):
        try:
            status = cli.main(list(args))
        except SystemExit as exc:  # argparse's own usage errors
            status = exc.code if isinstance(exc.code, int) else 1
        finally:
            root.handlers[:] = handlers
    return subprocess.CompletedProcess(["pvmonit-exporter", *args], status, out.getvalue(), err.getvalue())


def assert_one_line_error(result: subprocess.CompletedProcess[str], start: str) -> str:
    """The CLI's contract for a user error: exit 2, nothing on stdout, one line on stderr, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.endswith("\n")
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"pvmonit-exporter: {start}"), result.stderr
    return result.stderr.rstrip("\n")


@contextmanager
def world_readable_dir() -> Iterator[Path]:
    """A fresh directory everyone may enter (pytest's tmp_path sits under a 0700 directory of root's)."""
    path = Path(tempfile.mkdtemp(prefix="pvmonit-test-"))
    try:
        path.chmod(0o755)
        yield path
    finally:
        shutil.rmtree(path)


def run_cli_unprivileged(*args: str, work: Path) -> subprocess.CompletedProcess[str]:
    """`run_cli(*args)` as a user who is not root: as is when the tests are not run as root, else `main_as_nobody`
    (then `work` holds its captured output and must be writable)."""
    if os.geteuid() != 0:
        return run_cli(*args)
    status, out, err = main_as_nobody(args, work)
    return subprocess.CompletedProcess(list(args), status, out, err)


def main_as_nobody(argv: Sequence[str], work: Path) -> tuple[int, str, str]:
    """Run `cli.main(argv)` in a forked child that gave up root for uid/gid 65534; (exit status, stdout, stderr).

    As root nothing is ever "permission denied", and a subprocess started with `user=65534` cannot even start:
    the venv's interpreter lives under /root (mode 0700). A fork keeps the loaded interpreter, imports the CLI,
    then drops the privileges for real, so the permission check the CLI meets is the kernel's. Only for a root
    test run, and only for commands that import nothing more once started (`check-config`, `read`).
    """
    out_path, err_path = work / "stdout", work / "stderr"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        pid = os.fork()
        if pid == 0:  # the child: it must never return into pytest
            status = 99
            try:
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
                sys.stderr = open(2, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
                import importlib

                from pvmonit_exporter.commands import main as cli

                # Import while still root (the interpreter's own modules are out of nobody's reach), and anew:
                # the commands' default streams were bound at import, so bind ours.
                cli = importlib.reload(cli)
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
                status = cli.main(list(argv))
            except SystemExit as exc:
                status = exc.code if isinstance(exc.code, int) else 1
            except BaseException:  # noqa: BLE001 - reported to the parent through stderr and status 99
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(status)
        _, wait_status = os.waitpid(pid, 0)
    return (os.waitstatus_to_exitcode(wait_status), out_path.read_text(encoding="utf-8"),
            err_path.read_text(encoding="utf-8"))
