"""`read` in the first minutes with real hardware: a silent port, a device at the wrong speed, Ctrl-C, a port
another program holds, and `--decoded` in a person's units. Real subprocesses on real pseudo-terminals."""

import os
import re
import select
import signal
import time
from typing import IO

import pytest

from pvmonit_exporter.vedirect.framing import encode_block
from tests.commands.test_main import CAPTURES, PTY_BLOCK, SUMMARY_RE, decoded_blocks, ok, pty_reader, read_while_sending
from tests.config import run_cli
from tests.vedirect_samples import BMV_HISTORY, BMV_MAIN

# Long enough for a loaded CI machine; what is asserted is what the line says (5 s), not when it came.
REPORT_TIMEOUT = 20.0


def uart_at_wrong_speed(data: bytes, sent_baud: int, read_baud: int) -> bytes:
    """What a UART set to `read_baud` receives from 8N1 frames sent at `sent_baud`: the line sampled at the
    wrong rate — a start bit found at each falling edge, eight data bits and a stop bit sampled mid-bit."""
    bits = [1] * 20  # idle line
    for byte in data:
        bits += [0, *[(byte >> i) & 1 for i in range(8)], 1]
    bits += [1] * 20

    def level(t: float) -> int:
        return bits[min(int(t * sent_baud), len(bits) - 1)]

    out = bytearray()
    t, end, step = 0.0, len(bits) / sent_baud, 1 / read_baud
    while t < end:
        if level(t) == 1:
            t += 1 / (sent_baud * 4)  # look for the next falling edge
            continue
        out.append(sum(level(t + (1.5 + i) * step) << i for i in range(8)))
        t += 9.5 * step  # past the stop bit's sample point
    return bytes(out)


def stderr_line(stderr: IO[bytes], containing: bytes, timeout: float = REPORT_TIMEOUT,
                feed: bytes = b"", master: int = -1) -> bytes:
    """The first stderr line containing `containing`; meanwhile `feed` is written to the port 5 times a second."""
    received = b""
    deadline = time.monotonic() + timeout
    while containing not in received or not received.endswith(b"\n"):
        assert time.monotonic() < deadline, f"no {containing!r} within {timeout} s; stderr: {received!r}"
        if feed:
            os.write(master, feed)
        readable, _, _ = select.select([stderr], [], [], 0.2)
        if readable:
            chunk = os.read(stderr.fileno(), 65536)
            assert chunk, f"stderr closed; got {received!r}"
            received += chunk
    return next(line for line in received.split(b"\n") if containing in line)


def test_wrong_speed_garbage_is_no_block_and_no_cr_lf() -> None:
    garbage = uart_at_wrong_speed(encode_block(PTY_BLOCK), sent_baud=9600, read_baud=19200)
    assert len(garbage) > 50
    assert b"\r\n" not in garbage  # not one line of the block survives
    assert b"PID" not in garbage


@pytest.mark.slow
def test_silent_port_says_nothing_arrived() -> None:
    with pty_reader() as (_, process):
        assert process.stderr is not None
        line = stderr_line(process.stderr, b"no valid block")
        assert process.poll() is None  # it keeps listening
    assert re.fullmatch(rb"read: /dev/pts/\d+: no valid block for 5 s: nothing arrived "
                        rb"\(check the cable and the port; is the device asleep\?\)", line), line


@pytest.mark.slow
def test_device_at_the_wrong_speed_says_bytes_but_no_block() -> None:
    garbage = uart_at_wrong_speed(encode_block(PTY_BLOCK), sent_baud=9600, read_baud=19200)
    with pty_reader() as (master, process):
        assert process.stderr is not None
        assert process.stdout is not None
        line = stderr_line(process.stderr, b"no valid block", feed=garbage, master=master)
        assert process.poll() is None
        assert not select.select([process.stdout], [], [], 0)[0]  # no block printed
    match = re.fullmatch(rb"read: /dev/pts/\d+: no valid block for 5 s: (\d+) bytes arrived but no valid "
                         rb"VE\.Direct block \(wrong speed, or not a VE\.Direct device\?\)", line)
    assert match is not None, line
    assert int(match[1]) >= len(garbage)


@pytest.mark.slow
def test_ctrl_c_prints_the_summary_and_exits_130() -> None:
    with pty_reader("--json") as (master, process):
        assert process.stdout is not None
        assert process.stderr is not None
        read_while_sending(master, process.stdout, encode_block(PTY_BLOCK), b"\n")
        process.send_signal(signal.SIGINT)
        status = process.wait(timeout=10)
        stderr = process.stderr.read().decode()
    assert status == 130
    assert "Traceback" not in stderr
    assert "KeyboardInterrupt" not in stderr
    summary = SUMMARY_RE.fullmatch(stderr)
    assert summary is not None, stderr
    assert int(summary[1]) >= 1  # the blocks it printed are counted


@pytest.mark.slow
def test_decoded_in_a_persons_units() -> None:
    result = ok(run_cli("read", "--decoded", str(CAPTURES / "bvm702.dump")))
    main, history = decoded_blocks(result.stdout)[:2]
    assert any(re.fullmatch(r"SOC: \d+\.\d %", line) for line in main), main
    assert any(re.fullmatch(r"CE: -?\d+\.\d Ah", line) for line in main), main
    assert any(re.fullmatch(r"TTG: (infinite|\d+ min|\d+ h \d\d min)", line) for line in main), main
    assert any(re.fullmatch(r"H17: \d+\.\d\d kWh", line) for line in history), history
    assert any(re.fullmatch(r"H9: \d+ h \d\d min", line) for line in history), history
    assert "Relay: OFF" in main


@pytest.mark.slow
@pytest.mark.parametrize(
    ("block", "lines"),
    [
        (BMV_MAIN, ["CE: -65.5 Ah", "SOC: 83.9 %", "TTG: infinite", "Alarm: ON", "AR: Low voltage, Low SOC"]),
        (BMV_HISTORY, ["H1: -149.3 Ah", "H9: 102 h 13 min", "H17: 68.43 kWh", "H18: 85.27 kWh"]),
    ],
)
def test_decoded_lines(tmp_path: os.PathLike[str], block: dict[str, str], lines: list[str]) -> None:
    recording = os.path.join(tmp_path, "one.dump")
    with open(recording, "wb") as file:
        file.write(encode_block(block))
    printed = decoded_blocks(ok(run_cli("read", "--decoded", recording)).stdout)[0]
    assert set(lines) <= set(printed), printed
