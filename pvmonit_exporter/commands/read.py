"""`pvmonit-exporter read SOURCE`: decode a serial port or a recording and print its valid blocks.

It is the first thing a user runs with real hardware, so a port that gives nothing says so on stderr (after
5 s, then at most every 30 s), telling silence from bytes that make no block, and Ctrl-C ends with the summary.
"""

import json
import os
import stat
import sys
import time
from typing import IO

import serial

from pvmonit_exporter.config.schema import is_remote, remote_port_problem
from pvmonit_exporter.errors import UserError
from pvmonit_exporter.sources.block_watch import BlockWatch
from pvmonit_exporter.sources.serialport import PORT_ERRORS, READ_SIZE, describe_error, open_port
from pvmonit_exporter.vedirect.fields import FIELDS, Kind, decode, format_decoded, format_firmware
from pvmonit_exporter.vedirect.framing import Block, Decoder
from pvmonit_exporter.vedirect.products import product_name

# A device sends a block every second: after this long without one, something is wrong worth a word.
SILENCE_REPORT_AFTER = 5.0
SILENCE_REPORT_EVERY = 30.0
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C


def format_block(block: Block, style: str) -> str:
    """One block as `read` prints it: `plain` (PvMonit's LABEL:VALUE), `json` (one line) or `decoded`."""
    if style == "json":
        return json.dumps(block, ensure_ascii=False, separators=(",", ":"))
    if style == "plain":
        return "".join(f"{label}:{value}\n" for label, value in block.items())
    lines = []
    for label, raw in block.items():
        spec = FIELDS.get(label)
        if label == "PID":
            name = product_name(raw)
            text = f"{raw} ({name})" if name else raw
        elif label in ("FW", "FWE"):
            text = format_firmware(raw)
        elif spec is None or spec.kind is Kind.TEXT:
            text = raw
        else:
            text = format_decoded(decode(label, raw))
        lines.append(f"{label}: {text}\n")
    return "".join(lines)


def _emit(block: Block, style: str, out: IO[str]) -> None:
    """A block, then a newline: JSON lines, or a blank line between LABEL:VALUE blocks."""
    out.write(format_block(block, style) + "\n")


def _summary(decoder: Decoder) -> str:
    s = decoder.stats
    return (
        f"read: {s.blocks_valid} blocks valid, {s.blocks_rejected} rejected "
        f"({s.checksum_errors} checksum, {s.malformed_blocks} malformed), "
        f"{s.hex_valid + s.hex_invalid} HEX messages ({s.hex_invalid} invalid), "
        f"{s.bytes_discarded} bytes discarded"
    )


def _read_chunk(recording: IO[bytes], source: str) -> bytes:
    try:
        return recording.read(65536)
    except OSError as exc:
        raise UserError(f"{source}: cannot read: {exc.strerror or exc}") from None


def read_command(source: str, style: str, out: IO[str] = sys.stdout, err: IO[str] = sys.stderr) -> int:
    mode = _local_mode(source)
    decoder = Decoder()
    try:
        if mode is not None and stat.S_ISREG(mode):
            _read_recording(source, style, decoder, out)
        else:
            _read_port(source, style, decoder, out, err)
    except KeyboardInterrupt:
        out.flush()
        err.write(_summary(decoder) + "\n")
        return EXIT_INTERRUPTED
    out.flush()
    err.write(_summary(decoder) + "\n")
    return 0


def _local_mode(source: str) -> int | None:
    """The file mode of a local source; None for a remote port (`socket://`, `rfc2217://`)."""
    if is_remote(source):
        problem = remote_port_problem(source)
        if problem:
            raise UserError(problem)
        return None
    try:
        mode = os.stat(source).st_mode
    except OSError as exc:
        raise UserError(describe_error(source, exc)) from None
    if stat.S_ISDIR(mode):
        raise UserError(f"{source}: is a directory, not a serial port or a recording")
    return mode


def _read_recording(source: str, style: str, decoder: Decoder, out: IO[str]) -> None:
    try:
        recording = open(source, "rb")  # noqa: SIM115 - closed below; errors split from write errors
    except OSError as exc:
        raise UserError(f"{source}: cannot read: {exc.strerror or exc}") from None
    with recording:
        while chunk := _read_chunk(recording, source):
            for block in decoder.feed(chunk):
                _emit(block, style, out)
    decoder.close()


def _read_port(source: str, style: str, decoder: Decoder, out: IO[str], err: IO[str]) -> None:
    """Print the port's blocks until Ctrl-C; on stderr, what is wrong while no valid block arrives."""
    try:
        port = open_port(source)
    except PORT_ERRORS as exc:
        raise UserError(describe_error(source, exc)) from None
    watch = BlockWatch(SILENCE_REPORT_AFTER, time.monotonic(), repeat_every=SILENCE_REPORT_EVERY)
    try:
        with port:
            while True:
                data = port.read(READ_SIZE)
                hex_before = decoder.stats.hex_valid
                blocks = decoder.feed(data) if data else []
                for block in blocks:
                    _emit(block, style, out)
                if blocks:
                    out.flush()
                answers = decoder.stats.hex_valid - hex_before
                report = watch.observe(time.monotonic(), len(data), len(blocks) + answers)
                if report is not None:
                    err.write(f"read: {source}: {report.describe()}\n")
                    err.flush()
    except BrokenPipeError:
        raise  # stdout closed (`| head`): handled in main, not a port problem
    except (OSError, serial.SerialException) as exc:
        raise UserError(f"{source}: disconnected: {exc}") from None
