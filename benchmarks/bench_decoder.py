"""Throughput of framing.Decoder against PyPI vedirect-m8 on the genuine recordings.

Run by hand: `.venv/bin/python -m benchmarks.bench_decoder`. Prints figures; asserts nothing about speed.

Both parse the same bytes into per-block dicts of raw strings. Ours is fed 4 KiB chunks, as from a serial
port. vedirect-m8 reads one byte at a time from its serial port and passes it to `Vedirect.input_read`;
here that method is called directly with each byte (no port is opened, which flatters it), and after every
dict it returns the reader is re-armed with `init_data_read()`, exactly as its own `read_global_packet` does.

Each contender's time is the best of three runs in which blocks are counted and dropped as they come (an
exporter keeps none); which blocks each recovers is checked in separate, untimed passes.
"""

import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

from vedirect_m8.exceptions import InputReadException, PacketReadException
from vedirect_m8.vedirect import Vedirect

from pvmonit_exporter.vedirect.framing import Block, Decoder, encode_block, encode_hex_message

CAPTURES = Path(__file__).resolve().parent.parent / "tests" / "data" / "captures"
RECORDINGS = ("bluesolar_1.23", "smartsolar_1.39", "bvm702")
CHUNK = 4096
TARGET_BYTES = 30_000_000
REPEATS = 3
PEER_FRACTION = 10  # the byte-at-a-time peer gets 1/10 of the stream; its figures are per byte, so comparable


def ours(data: bytes) -> Iterator[Block]:
    decoder = Decoder()
    for start in range(0, len(data), CHUNK):
        yield from decoder.feed(data[start : start + CHUNK])
    decoder.close()


def peer(data: bytes) -> Iterator[dict[str, str]]:
    reader = Vedirect(serial_conf={"serial_port": None}, auto_start=False)  # no port opened
    read = reader.input_read
    for start in range(len(data)):
        try:
            packet = read(data[start : start + 1])
        except (InputReadException, PacketReadException):  # non-ASCII byte in a label/value, too many fields
            reader.init_data_read()
            continue
        if packet is not None:
            yield packet
            reader.init_data_read()


def genuine(found: list[dict[str, str]], recorded: bytes) -> int:
    """How many of `found` were really sent: re-encoded, with their checksum byte, they occur in `recorded`."""
    verdicts: dict[bytes, bool] = {}
    count = 0
    for block in found:
        raw = encode_block(block)
        if raw not in verdicts:
            verdicts[raw] = raw in recorded
        count += verdicts[raw]
    return count


def timed(parse: Callable[[bytes], Iterator[dict[str, str]]], data: bytes) -> tuple[int, float]:
    """Blocks found and the best of REPEATS runs. Blocks are counted and dropped as they come, as in the
    exporter: keeping 200,000 dicts alive would time the allocator and the garbage collector, not the parser.
    The same holds for both contenders."""
    best = float("inf")
    count = 0
    for _ in range(REPEATS):
        start = time.perf_counter()
        count = sum(1 for _ in parse(data))
        best = min(best, time.perf_counter() - start)
    return count, best


def peak_memory(data: bytes) -> int:
    """Peak bytes allocated while our decoder streams `data` (blocks counted, not kept)."""
    tracemalloc.start()
    decoder = Decoder()
    count = 0
    for start in range(0, len(data), CHUNK):
        count += len(decoder.feed(data[start : start + CHUNK]))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def with_hex_traffic(recording: bytes) -> bytes:
    """The recording with what a HEX-speaking reader adds to the line after every block: a get reply (history
    day 0, 34 bytes) and an asynchronous message, as a device polled by the daemon sends them."""
    history_reply = encode_hex_message(0x7, bytes.fromhex("501000") + bytes(range(34)))
    async_message = encode_hex_message(0xA, bytes.fromhex("01020003"))
    mark = b"\r\nChecksum\t"
    pieces: list[bytes] = []
    start = 0
    while (found := recording.find(mark, start)) >= 0 and found + len(mark) < len(recording):
        end = found + len(mark) + 1  # just after the checksum byte
        pieces += [recording[start:end], history_reply, async_message]
        start = end
    pieces.append(recording[start:])
    return b"".join(pieces)


def crafted_stream(size: int) -> bytes:
    """Thousands of `\r\nPID\t` lines between false checksum marks: each mark closes a candidate that fails,
    and every line in it starts like a block. Recovery used to be quadratic in the lines between marks."""
    pattern = b"\r\nPID\t0xA053" * 3000 + b"\r\nChecksum\tX"
    return (pattern * (size // len(pattern) + 1))[:size]


def compare(title: str, stream: bytes, peer_stream: bytes) -> None:
    our_count, our_seconds = timed(ours, stream)
    peer_count, peer_seconds = timed(peer, peer_stream)
    print(
        f"{title:<34} ours {len(stream) / our_seconds / 1e6:>7.2f} MB/s ({our_count} blocks)   "
        f"vedirect-m8 {len(peer_stream) / peer_seconds / 1e6:>6.3f} MB/s ({peer_count} blocks)   "
        f"ratio {len(stream) / our_seconds / (len(peer_stream) / peer_seconds):.1f}x"
    )


def main() -> None:
    recordings = {name: (CAPTURES / f"{name}.dump").read_bytes() for name in RECORDINGS}

    print("Blocks recovered per recording: returned / genuine (re-encoded, found verbatim in the recording)")
    print(f"{'recording':<18} {'bytes':>8} {'ours':>13} {'vedirect-m8':>13}")
    for name, data in recordings.items():
        mine, theirs = list(ours(data)), list(peer(data))
        print(
            f"{name:<18} {len(data):>8} {len(mine):>6} / {genuine(mine, data):<4} "
            f"{len(theirs):>6} / {genuine(theirs, data):<4}"
        )

    one_pass = b"".join(recordings.values())
    recorded = one_pass * 2  # every block of the repeated stream lies within two consecutive passes
    repeats = max(1, TARGET_BYTES // len(one_pass))
    peer_repeats = max(1, repeats // PEER_FRACTION)
    stream = one_pass * repeats
    peer_stream = one_pass * peer_repeats

    our_count, our_seconds = timed(ours, stream)
    peer_count, peer_seconds = timed(peer, peer_stream)
    our_blocks, peer_blocks = list(ours(stream)), list(peer(peer_stream))
    assert (len(our_blocks), len(peer_blocks)) == (our_count, peer_count)
    our_mb_s = len(stream) / our_seconds / 1e6
    peer_mb_s = len(peer_stream) / peer_seconds / 1e6

    print()
    print(f"Stream: the three recordings concatenated ({len(one_pass)} bytes) x {repeats} = {len(stream) / 1e6:.1f} MB")
    print(
        f"vedirect-m8 is byte-at-a-time, so it ran on x {peer_repeats} = {len(peer_stream) / 1e6:.1f} MB; "
        "its MB/s and blocks/s are rates, comparable as they are."
    )
    print()
    print(f"{'decoder':<14} {'MB':>6} {'seconds':>8} {'MB/s':>8} {'blocks/s':>10} {'blocks':>8} {'genuine':>8}")
    for label, size, seconds, found in (
        ("ours (4 KiB)", len(stream), our_seconds, our_blocks),
        ("vedirect-m8", len(peer_stream), peer_seconds, peer_blocks),
    ):
        print(
            f"{label:<14} {size / 1e6:>6.1f} {seconds:>8.2f} {size / seconds / 1e6:>8.2f} "
            f"{len(found) / seconds:>10.0f} {len(found):>8} {genuine(found, recorded):>8}"
        )
    print(f"Speed ratio ours / vedirect-m8: {our_mb_s / peer_mb_s:.1f}x")
    print(
        f"Genuine blocks per pass of the three recordings: ours {genuine(our_blocks, recorded) / repeats:.0f}, "
        f"vedirect-m8 {genuine(peer_blocks, recorded) / peer_repeats:.0f}"
    )
    print()
    hex_pass = b"".join(with_hex_traffic(data) for data in recordings.values())
    compare(f"with HEX replies mixed in (x{repeats})", hex_pass * repeats, hex_pass * peer_repeats)
    crafted = crafted_stream(len(stream) // 10)
    compare("crafted `\\r\\nPID\\t` lines", crafted, crafted[: len(crafted) // PEER_FRACTION])
    print()
    print(
        f"Peak memory (tracemalloc) of our decoder streaming {len(stream) / 1e6:.1f} MB in 4 KiB chunks: "
        f"{peak_memory(stream) / 1024:.1f} KiB"
    )


if __name__ == "__main__":
    main()
