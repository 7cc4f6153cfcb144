"""The command line as a user meets it: `read` on the genuine recordings and on a real pseudo-terminal, its
errors, an early-closed stdout, `--version` and the usage error. Every run is a real subprocess."""

import fcntl
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import tty
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest

from pvmonit_exporter import __version__
from pvmonit_exporter.vedirect.framing import Block, Decoder, encode_block
from tests.config import ROOT, assert_one_line_error, run_cli, run_cli_unprivileged, world_readable_dir

CAPTURES = ROOT / "tests" / "data" / "captures"
# Recording → (valid blocks, rejected blocks, HEX messages): tests/data/captures/README.md and the decoder.
RECORDINGS: dict[str, tuple[int, int, int]] = {
    "bluesolar_1.23.dump": (248, 0, 7),
    "smartsolar_1.39.dump": (493, 1, 2),
    "bvm702.dump": (906, 0, 0),
}
STYLES = ("plain", "json", "decoded")
SUMMARY_RE = re.compile(
    r"read: (\d+) blocks valid, (\d+) rejected \((\d+) checksum, (\d+) malformed\), "
    r"(\d+) HEX messages \((\d+) invalid\), (\d+) bytes discarded\n"
)
LINE_RE = re.compile(r"[A-Za-z0-9_#]{1,9}:[\x20-\x7e]*")
PTY_BLOCK: Block = {"PID": "0xA053", "FW": "159", "V": "26180", "I": "-350", "CS": "5", "ERR": "0"}
PTY_TIMEOUT = 5.0

Results = dict[tuple[str, str], subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def read_results() -> Results:
    """`read` on every recording in every style, concurrently: (recording, style) → result."""
    jobs = [(name, style) for name in RECORDINGS for style in STYLES]

    def run(job: tuple[str, str]) -> subprocess.CompletedProcess[str]:
        name, style = job
        flags = [] if style == "plain" else [f"--{style}"]
        return run_cli("read", *flags, str(CAPTURES / name))

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return dict(zip(jobs, pool.map(run, jobs), strict=True))


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result


def plain_blocks(stdout: str) -> list[Block]:
    """Parse `LABEL:VALUE` lines, a blank line after each block."""
    assert stdout.endswith("\n\n")
    blocks = []
    for chunk in stdout[:-2].split("\n\n"):
        lines = chunk.split("\n")
        assert all(LINE_RE.fullmatch(line) for line in lines), chunk
        blocks.append(dict(line.split(":", 1) for line in lines))
    return blocks


def json_blocks(stdout: str) -> list[Block]:
    """One JSON object per line and nothing else."""
    assert stdout.endswith("\n")
    blocks = []
    for line in stdout[:-1].split("\n"):
        block = json.loads(line)
        assert isinstance(block, dict)
        assert all(isinstance(value, str) for value in block.values())
        blocks.append(block)
    return blocks


def decoded_blocks(stdout: str) -> list[list[str]]:
    assert stdout.endswith("\n\n")
    return [chunk.split("\n") for chunk in stdout[:-2].split("\n\n")]


# --- read on recordings ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", RECORDINGS)
def test_read_plain_counts_blocks(name: str, read_results: Results) -> None:
    blocks = plain_blocks(ok(read_results[name, "plain"]).stdout)
    assert len(blocks) == RECORDINGS[name][0]
    assert all("Checksum" not in block for block in blocks)


@pytest.mark.slow
@pytest.mark.parametrize("name", RECORDINGS)
def test_read_json_blocks_as_received(name: str, read_results: Results) -> None:
    blocks = json_blocks(ok(read_results[name, "json"]).stdout)
    valid, _, hex_messages = RECORDINGS[name]
    assert len(blocks) == valid
    assert all("Checksum" not in block for block in blocks)
    # Same blocks, labels in the same order, as the LABEL:VALUE output.
    plain = plain_blocks(read_results[name, "plain"].stdout)
    assert [list(b.items()) for b in blocks] == [list(b.items()) for b in plain]
    # Labels in received order, values raw: re-framed, a block is found byte for byte in the recording (all but
    # the few a HEX message was cut out of).
    raw = (CAPTURES / name).read_bytes()
    found = sum(encode_block(block) in raw for block in blocks)
    assert found >= valid - hex_messages
    assert found > 0


@pytest.mark.slow
def test_read_first_bluesolar_block(read_results: Results) -> None:
    name = "bluesolar_1.23.dump"
    first_json = json_blocks(read_results[name, "json"].stdout)[0]
    assert list(first_json)[:4] == ["PID", "FW", "SER#", "V"]
    assert (first_json["V"], first_json["CS"], first_json["PID"]) == ("12530", "3", "0xA042")
    first_decoded = decoded_blocks(ok(read_results[name, "decoded"]).stdout)[0]
    assert "CS: Bulk" in first_decoded
    assert "V: 12.53 V" in first_decoded
    assert "PID: 0xA042 (BlueSolar MPPT 75/15)" in first_decoded
    assert [line.split(": ", 1)[0] for line in first_decoded] == list(first_json)


@pytest.mark.slow
@pytest.mark.parametrize("name", RECORDINGS)
def test_read_decoded_blocks(name: str, read_results: Results) -> None:
    blocks = decoded_blocks(ok(read_results[name, "decoded"]).stdout)
    assert len(blocks) == RECORDINGS[name][0]
    assert all(re.fullmatch(r"[A-Za-z0-9_#]{1,9}: .*", line) for block in blocks for line in block)
    assert not any(line.startswith("Checksum") for block in blocks for line in block)


@pytest.mark.slow
def test_read_decoded_smartsolar_pid(read_results: Results) -> None:
    first = decoded_blocks(read_results["smartsolar_1.39.dump", "decoded"].stdout)[0]
    assert "PID: 0xA05F (SmartSolar MPPT 100/20)" in first


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("name", RECORDINGS)
def test_read_summary_on_stderr(name: str, style: str, read_results: Results) -> None:
    stderr = ok(read_results[name, style]).stderr
    match = SUMMARY_RE.fullmatch(stderr)
    assert match, stderr
    valid, rejected, checksum, malformed, hex_messages, hex_invalid, discarded = map(int, match.groups())
    assert (valid, rejected, hex_messages, hex_invalid) == (*RECORDINGS[name], 0)
    assert checksum + malformed == rejected
    # The same counters as the decoder fed the whole recording at once (the CLI reads it in chunks).
    decoder = Decoder()
    decoder.feed((CAPTURES / name).read_bytes())
    decoder.close()
    stats = decoder.stats
    assert (checksum, malformed, discarded) == (stats.checksum_errors, stats.malformed_blocks, stats.bytes_discarded)


@pytest.mark.slow
def test_read_smartsolar_summary_text(read_results: Results) -> None:
    assert "493 blocks valid, 1 rejected" in read_results["smartsolar_1.39.dump", "plain"].stderr


@pytest.mark.slow
def test_read_empty_recording(tmp_path: Path) -> None:
    empty = tmp_path / "empty.dump"
    empty.write_bytes(b"")
    result = ok(run_cli("read", "--json", str(empty)))
    assert result.stdout == ""
    assert result.stderr.startswith("read: 0 blocks valid, 0 rejected")


# --- read errors ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_read_no_such_port() -> None:
    port = "/dev/ttyUSB-pvmonit-test-missing"
    line = assert_one_line_error(run_cli("read", port), f"{port}: ")
    assert "no such port" in line


@pytest.mark.slow
def test_read_directory(tmp_path: Path) -> None:
    line = assert_one_line_error(run_cli("read", str(tmp_path)), f"{tmp_path}: ")
    assert "is a directory" in line


@pytest.mark.slow
def test_read_not_a_tty() -> None:
    line = assert_one_line_error(run_cli("read", os.devnull), f"{os.devnull}: ")
    assert "not a serial port" in line


@pytest.mark.slow
def test_read_unreadable_recording() -> None:
    with world_readable_dir() as work:
        recording = work / "secret.dump"
        recording.write_bytes((CAPTURES / "bluesolar_1.23.dump").read_bytes())
        recording.chmod(0o000)
        result = run_cli_unprivileged("read", str(recording), work=work)
    line = assert_one_line_error(result, f"{recording}: ")
    assert line == f"pvmonit-exporter: {recording}: cannot read: Permission denied"


# --- read on a real pseudo-terminal ---------------------------------------------------------------------


@contextmanager
def pty_reader(*flags: str) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """`read FLAGS /dev/pts/N` in a subprocess: (the master side to write to, the process)."""
    master, slave = os.openpty()
    try:
        tty.setraw(slave)
        # Ctrl-C as a terminal's foreground job gets it. A test run started in the background (`&`, some CI
        # runners) ignores SIGINT; a child would inherit that and Python would then install no Ctrl-C handler.
        # A handled signal is reset to its default by exec, so the child starts with SIG_DFL.
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "pvmonit_exporter", "read", *flags, os.ttyname(slave)],
                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )
        finally:
            signal.signal(signal.SIGINT, previous)
        try:
            yield master, process
        finally:
            if process.poll() is None:
                process.terminate()
            process.wait(timeout=PTY_TIMEOUT)
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
    finally:
        os.close(master)
        os.close(slave)


def read_while_sending(master: int, stdout: IO[bytes], frame: bytes, until: bytes) -> bytes:
    """Send `frame` to the port about 5 times a second (opening a port flushes what was sent before, as a device
    keeps sending) and collect stdout until it contains `until`, within PTY_TIMEOUT."""
    received = b""
    deadline = time.monotonic() + PTY_TIMEOUT
    while until not in received:
        assert time.monotonic() < deadline, f"nothing within {PTY_TIMEOUT} s; got {received!r}"
        os.write(master, frame)
        readable, _, _ = select.select([stdout], [], [], 0.2)
        if readable:
            chunk = os.read(stdout.fileno(), 65536)
            assert chunk, "stdout closed"
            received += chunk
    return received


@pytest.mark.slow
def test_read_pty_prints_block() -> None:
    with pty_reader("--json") as (master, process):
        assert process.stdout is not None
        received = read_while_sending(master, process.stdout, encode_block(PTY_BLOCK), b"\n")
        assert process.poll() is None  # still reading the port
    first_line = received.split(b"\n", 1)[0]
    assert json.loads(first_line) == PTY_BLOCK
    assert list(json.loads(first_line)) == list(PTY_BLOCK)


@pytest.mark.slow
def test_read_pty_plain_block() -> None:
    with pty_reader() as (master, process):
        assert process.stdout is not None
        received = read_while_sending(master, process.stdout, encode_block(PTY_BLOCK), b"\n\n")
    assert received.split(b"\n\n", 1)[0].decode() == "\n".join(f"{k}:{v}" for k, v in PTY_BLOCK.items())


# --- stdout closed early (`read … | head -n 3`) ----------------------------------------------------------


@pytest.mark.slow
def test_read_recording_into_closed_pipe(read_results: Results) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "pvmonit_exporter", "read", str(CAPTURES / "bvm702.dump")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    # More output than the pipe holds: the reader does meet the closed pipe.
    assert len(read_results["bvm702.dump", "plain"].stdout) > fcntl.fcntl(process.stdout, fcntl.F_GETPIPE_SZ)
    head = [process.stdout.readline() for _ in range(3)]
    process.stdout.close()
    _, stderr = process.communicate(timeout=PTY_TIMEOUT)
    assert head == [b"PID:0x203\n", b"V:12065\n", b"I:-7625\n"]
    assert process.returncode == 0, stderr
    assert b"Traceback" not in stderr
    assert b"Error" not in stderr


@pytest.mark.slow
def test_read_port_into_closed_pipe() -> None:
    with pty_reader() as (master, process):
        assert process.stdout is not None
        frame = encode_block(PTY_BLOCK)
        read_while_sending(master, process.stdout, frame, b"\n")
        process.stdout.close()
        deadline = time.monotonic() + PTY_TIMEOUT
        while process.poll() is None and time.monotonic() < deadline:
            os.write(master, frame)  # the next block meets the closed pipe
            time.sleep(0.1)
        assert process.stderr is not None
        stderr = process.stderr.read() if process.poll() is not None else b"(still running)"
        status = process.poll()
    assert status == 0, stderr
    assert b"Traceback" not in stderr
    assert b"Broken pipe" not in stderr


# --- global flags ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_version() -> None:
    result = ok(run_cli("--version"))
    assert result.stdout == f"pvmonit-exporter {__version__}\n"


@pytest.mark.slow
def test_no_command_no_config() -> None:
    result = run_cli()
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("usage: pvmonit-exporter")
    assert "Traceback" not in result.stderr
    assert result.stderr.endswith("pvmonit-exporter: error: give a COMMAND, or --config.file to run the exporter\n")
