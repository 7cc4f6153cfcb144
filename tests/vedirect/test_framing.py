"""framing.Decoder on the three genuine recordings, and on hand-made blocks at the protocol's limits."""

import functools
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pvmonit_exporter.vedirect.fields import decode, format_decoded
from pvmonit_exporter.vedirect.framing import (
    MAX_FIELDS,
    MAX_HEX_LEN,
    MAX_LABEL_LEN,
    MAX_VALUE_LEN,
    Block,
    Decoder,
    DecoderStats,
    encode_block,
    encode_hex_message,
    hex_message_is_valid,
)

CAPTURES = Path(__file__).resolve().parent.parent / "data" / "captures"
RECORDINGS = ("bluesolar_1.23", "smartsolar_1.39", "bvm702")
MARK = b"\r\nChecksum\t"
HEX_IN_RECORDING = re.compile(rb":([0-9A-F]+)\n")


def read_capture(name: str) -> bytes:
    return (CAPTURES / f"{name}.dump").read_bytes()


def fixed_chunks(data: bytes, size: int) -> Iterator[bytes]:
    return (data[i : i + size] for i in range(0, len(data), size))


def random_chunks(data: bytes, seed: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    pos = 0
    while pos < len(data):
        size = rng.randint(1, 700)
        yield data[pos : pos + size]
        pos += size


Chunking = Callable[[bytes], Iterator[bytes]]
CHUNKINGS: dict[str, Chunking] = {
    "whole": lambda data: iter([data]),
    "size-1": functools.partial(fixed_chunks, size=1),
    "size-7": functools.partial(fixed_chunks, size=7),
    "size-4096": functools.partial(fixed_chunks, size=4096),
    "random-seed-1": functools.partial(random_chunks, seed=1),
    "random-seed-2": functools.partial(random_chunks, seed=2),
}


def run(data: bytes, chunking: Chunking = CHUNKINGS["whole"]) -> tuple[list[Block], DecoderStats]:
    decoder = Decoder()
    blocks = [block for chunk in chunking(data) for block in decoder.feed(chunk)]
    decoder.close()
    return blocks, decoder.stats


@functools.cache
def recording(name: str) -> tuple[bytes, list[Block], DecoderStats]:
    data = read_capture(name)
    return (data, *run(data))


def frame(pairs: list[tuple[bytes, bytes]]) -> bytes:
    """A block built by hand (independently of encode_block), duplicates and odd bytes allowed."""
    body = b"".join(b"\r\n" + label + b"\t" + value for label, value in pairs) + MARK
    return body + bytes([-sum(body) % 256])


# ---------------------------------------------------------------------------------------------------------
# The recordings


# name: (valid blocks, checksum errors, valid HEX messages)
EXPECTED_COUNTS = {
    "bluesolar_1.23": (248, 0, 7),
    "smartsolar_1.39": (493, 1, 2),
    "bvm702": (906, 0, 0),
}


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("name", RECORDINGS)
def test_recording_counts_do_not_depend_on_chunking(name: str, chunking: str) -> None:
    data, reference_blocks, _ = recording(name)
    blocks, stats = run(data, CHUNKINGS[chunking])
    valid, checksum_errors, hex_valid = EXPECTED_COUNTS[name]
    assert len(blocks) == valid
    assert stats.blocks_valid == valid
    assert stats.checksum_errors == checksum_errors
    assert stats.malformed_blocks == 0
    assert stats.hex_valid == hex_valid
    assert stats.hex_invalid == 0
    assert stats.bytes_received == len(data)
    assert blocks == reference_blocks


@pytest.mark.parametrize("name", RECORDINGS)
def test_recording_is_exactly_blocks_hex_and_discarded_bytes(name: str) -> None:
    """Every block re-encodes to the very bytes of the recording, in order; nothing else is lost."""
    data, blocks, stats = recording(name)
    pos = 0
    for block in blocks:
        raw = encode_block(block)
        at = data.find(raw, pos)
        assert at >= 0, block
        pos = at + len(raw)
    hex_bodies = HEX_IN_RECORDING.findall(data)
    assert all(hex_message_is_valid(body) for body in hex_bodies)
    assert len(hex_bodies) == stats.hex_valid
    # What is discarded: the bytes before the first complete block and after the last checksum byte.
    leading = data.index(b"\r\nPID")
    trailing = len(data) - (data.rindex(MARK) + len(MARK) + 1)
    assert stats.bytes_discarded == leading + trailing
    block_bytes = sum(len(encode_block(block)) for block in blocks)
    hex_bytes = sum(len(body) + 2 for body in hex_bodies)
    assert stats.bytes_received == block_bytes + hex_bytes + stats.bytes_discarded


def test_bluesolar_starts_with_one_stray_byte_then_a_complete_block() -> None:
    data, blocks, stats = recording("bluesolar_1.23")
    assert data[:1] == b"\xb4"
    assert data[1:3] == b"\r\n"
    assert data.index(encode_block(blocks[0])) == 1
    assert stats.bytes_discarded == 1
    assert stats.checksum_errors == 0


def test_smartsolar_starts_mid_block_and_loses_only_that_block() -> None:
    data, blocks, stats = recording("smartsolar_1.39")
    assert data.startswith(b"ID\t0xA05F\r\nFW\t139\r\n")
    assert stats.checksum_errors == 1
    assert data.index(encode_block(blocks[0])) == data.index(b"\r\nPID")


def test_bvm702_checksum_bytes_equal_to_colon_are_not_hex() -> None:
    data, blocks, _ = recording("bvm702")
    colon_blocks = [i for i, block in enumerate(blocks) if encode_block(block).endswith(b":")]
    assert data.count(MARK + b":") == len(colon_blocks) == 7
    assert colon_blocks[0] == 512
    assert blocks[512]["TTG"] == "2199"


def values(block: Block) -> dict[str, float | str | None]:
    """Decoded numbers, or the words of enumerations and text fields."""
    result: dict[str, float | str | None] = {}
    for label, raw in block.items():
        item = decode(label, raw)
        result[label] = item.text if item.value is None or item.text is not None else item.value
    return result


BLUESOLAR_CONSTANT = {
    "PID": "0xA042",
    "FW": "123",
    "SER#": "HQ1411MYIKN",
    "CS": "Bulk",
    "ERR": "No error",
    "LOAD": "ON",
    "IL": 0.0,
    "H19": 8272 * 36_000.0,
    "H20": 0.0,
    "H21": 11.0,
    "H22": 25 * 36_000.0,
    "H23": 119.0,
    "HSDS": 274.0,
}


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (0, {"V": 12.53, "I": 0.62, "VPV": 33.58, "PPV": 8.0}),
        (124, {"V": 12.51, "I": 0.45, "VPV": 32.46, "PPV": 6.0}),
        (247, {"V": 12.54, "I": 0.5, "VPV": 29.99, "PPV": 7.0}),
    ],
)
def test_bluesolar_decoded_values(index: int, expected: dict[str, float]) -> None:
    data, blocks, _ = recording("bluesolar_1.23")
    block = blocks[index]
    assert list(block) == [
        "PID", "FW", "SER#", "V", "I", "VPV", "PPV", "CS", "ERR", "LOAD", "IL",
        "H19", "H20", "H21", "H22", "H23", "HSDS",
    ]  # fmt: skip
    assert values(block) == pytest.approx({**BLUESOLAR_CONSTANT, **expected})
    raw_v = int(expected["V"] * 1000)
    assert f"\r\nV\t{raw_v}\r\n".encode() in data


def test_bluesolar_first_block_bytes_and_words() -> None:
    data, blocks, _ = recording("bluesolar_1.23")
    first = blocks[0]
    assert data[1:].startswith(b"\r\nPID\t0xA042\r\nFW\t123\r\nSER#\tHQ1411MYIKN\r\nV\t12530\r\nI\t620\r\n")
    assert decode("V", first["V"]).value == pytest.approx(12.53)
    assert decode("I", first["I"]).value == pytest.approx(0.62)
    assert decode("VPV", first["VPV"]).value == pytest.approx(33.58)
    assert decode("H19", first["H19"]).value == pytest.approx(8272 * 36_000)
    assert format_decoded(decode("V", first["V"])) == "12.53 V"
    assert format_decoded(decode("CS", first["CS"])) == "Bulk"


SMARTSOLAR_CONSTANT = {
    "PID": "0xA05F",
    "FW": "139",
    "SER#": "HQ18486U2B4",
    "VPV": 0.01,
    "PPV": 0.0,
    "CS": "Off",
    "MPPT": "Off",
    "ERR": "No error",
    "LOAD": "ON",
    "IL": 0.0,
    **{f"H{n}": 0.0 for n in range(19, 24)},
    "HSDS": 0.0,
}


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (0, {"V": 12.81, "I": -0.01}),
        (124, {"V": 12.81, "I": -0.02}),
        (195, {"V": 12.8, "I": -0.01}),
        (492, {"V": 12.73, "I": -0.01}),
    ],
)
def test_smartsolar_decoded_values(index: int, expected: dict[str, float]) -> None:
    _, blocks, _ = recording("smartsolar_1.39")
    assert values(blocks[index]) == pytest.approx({**SMARTSOLAR_CONSTANT, **expected})


BMV_MAIN_CONSTANT = {"PID": "0x203", "Alarm": "OFF", "Relay": "OFF", "AR": "None", "BMV": "700", "FW": "0308"}
BMV_HISTORY_CONSTANT = {
    "H1": -149322 * 3.6,
    "H2": -82854 * 3.6,
    "H3": 0.0,
    "H4": 0.0,
    "H5": 0.0,
    "H7": 11.733,
    "H8": 16.161,
    "H10": 26.0,
    "H11": 0.0,
    "H12": 0.0,
    "H17": 6843 * 36_000.0,
    "H18": 8527 * 36_000.0,
}


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (0, {"V": 12.065, "I": -7.625, "P": -92.0, "CE": -65473 * 3.6, "SOC": 0.839, "TTG": 942 * 60.0}),
        (452, {"V": 12.159, "I": -2.651, "P": -32.0, "CE": -65865 * 3.6, "SOC": 0.837, "TTG": 1776 * 60.0}),
        (904, {"V": 12.169, "I": -2.673, "P": -33.0, "CE": -66033 * 3.6, "SOC": 0.837, "TTG": 3417 * 60.0}),
    ],
)
def test_bvm702_main_block(index: int, expected: dict[str, float]) -> None:
    _, blocks, _ = recording("bvm702")
    assert list(blocks[index]) == ["PID", "V", "I", "P", "CE", "SOC", "TTG", "Alarm", "Relay", "AR", "BMV", "FW"]
    assert values(blocks[index]) == pytest.approx({**BMV_MAIN_CONSTANT, **expected})


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (1, {"H6": -5526294 * 3.6, "H9": 368003.0}),
        (453, {"H6": -5526685 * 3.6, "H9": 368229.0}),
        (905, {"H6": -5526854 * 3.6, "H9": 368456.0}),
    ],
)
def test_bvm702_history_block(index: int, expected: dict[str, float]) -> None:
    _, blocks, _ = recording("bvm702")
    assert list(blocks[index]) == [f"H{n}" for n in (*range(1, 13), 17, 18)]
    assert values(blocks[index]) == pytest.approx({**BMV_HISTORY_CONSTANT, **expected})


def test_bvm702_alternates_main_and_history_blocks() -> None:
    _, blocks, _ = recording("bvm702")
    assert all(("PID" in block) == (i % 2 == 0) for i, block in enumerate(blocks))


# ---------------------------------------------------------------------------------------------------------
# Encoding helpers and HEX messages


def test_encode_block_frames_like_a_device() -> None:
    assert encode_block({"PID": "0xA042", "V": "12530"}) == frame([(b"PID", b"0xA042"), (b"V", b"12530")])
    raw = encode_block({"V": "1"})
    assert raw[:-1] == b"\r\nV\t1\r\nChecksum\t"
    assert sum(raw) % 256 == 0


@pytest.mark.parametrize("message", [b"A0102000345", b"A0202000200000045", b"ADBED00CD0AAC", b"4AAAAFD"])
def test_hex_messages_from_the_reference_are_valid(message: bytes) -> None:
    assert hex_message_is_valid(message)
    command, data = int(message[:1], 16), bytes.fromhex(message[1:-2].decode())
    assert encode_hex_message(command, data) == b":" + message + b"\n"


@pytest.mark.parametrize("message", [b"A0102000346", b"A01", b"A010200034", b"A01020003G5", b"", b"A5"])
def test_invalid_hex_messages(message: bytes) -> None:
    assert not hex_message_is_valid(message)


def test_invalid_hex_message_is_counted_and_the_next_block_kept() -> None:
    block = {"V": "12530"}
    blocks, stats = run(b":A0102000346\n" + encode_block(block))
    assert blocks == [block]
    assert (stats.hex_valid, stats.hex_invalid) == (0, 1)


def test_overlong_hex_message_is_dropped_and_buffer_stays_bounded() -> None:
    decoder = Decoder()
    decoder.feed(b":" + b"A" * (MAX_HEX_LEN // 2))
    assert decoder._hex is not None
    decoder.feed(b"A" * MAX_HEX_LEN)
    assert decoder._hex is None
    block = {"V": "12530"}
    assert decoder.feed(b"\n" + encode_block(block)) == [block]
    assert decoder.stats.hex_invalid == 1


def test_genuine_hex_message_anywhere_inside_a_genuine_block() -> None:
    data, blocks, _ = recording("bluesolar_1.23")
    hex_message = HEX_IN_RECORDING.search(data)
    assert hex_message is not None
    raw = encode_block(blocks[0])
    checksum_at = len(raw) - 1
    for at in range(len(raw) + 1):
        if at == checksum_at:
            continue  # a ':' right after "Checksum<TAB>" is the checksum byte itself
        mixed = raw[:at] + hex_message.group() + raw[at:] + raw
        for chunking in ("whole", "size-1"):
            got, stats = run(mixed, CHUNKINGS[chunking])
            assert got == [blocks[0], blocks[0]], (at, chunking)
            assert stats.hex_valid == 1


def test_reset_forgets_a_partial_block() -> None:
    raw = encode_block({"V": "12530", "I": "620"})
    decoder = Decoder()
    assert decoder.feed(raw[:10]) == []
    decoder.reset()
    assert decoder.feed(raw[10:]) == []
    assert decoder.feed(raw) == [{"V": "12530", "I": "620"}]
    assert decoder.stats.bytes_discarded == len(raw)


# ---------------------------------------------------------------------------------------------------------
# Structure: blocks whose checksum is right but which no device sends

NEXT = {"PID": "0xA042", "V": "12530"}


def assert_rejected_as_malformed(raw: bytes) -> None:
    assert sum(raw) % 256 == 0
    # Precondition: no tail of it (from a later CR LF) is checksum-valid by chance, so the only candidate a
    # decoder can find here is the malformed whole.
    assert not [m for m in re.finditer(rb"\r\n", raw) if m.start() and sum(raw[m.start() :]) % 256 == 0]
    blocks, stats = run(raw + encode_block(NEXT))
    assert blocks == [NEXT]
    assert stats.malformed_blocks == 1
    assert stats.checksum_errors == 0
    assert stats.blocks_valid == 1


@pytest.mark.parametrize(
    "pairs",
    [
        [(b"V", b"12530"), (b"H\x0022", b"5")],
        [(b"V", b"12530"), (b"\x00H22", b"5")],
        [(b"V", b"12530"), (b"H22\x00", b"5")],
        [(b"V", b"125\x0030")],
        [(b"V", b"\x0012530")],
    ],
    ids=["inside-label", "label-start", "label-end", "inside-value", "value-start"],
)
def test_nul_byte_is_rejected_although_the_checksum_sums_to_zero(pairs: list[tuple[bytes, bytes]]) -> None:
    clean = frame([(label.replace(b"\x00", b""), value.replace(b"\x00", b"")) for label, value in pairs])
    with_nul = frame(pairs)
    assert with_nul[-1] == clean[-1]  # NUL adds nothing to the sum
    assert_rejected_as_malformed(with_nul)


def test_value_longer_than_the_limit_is_rejected() -> None:
    assert_rejected_as_malformed(frame([(b"SER#", b"x" * (MAX_VALUE_LEN + 1))]))


def test_label_longer_than_the_limit_is_rejected() -> None:
    assert_rejected_as_malformed(frame([(b"L" * (MAX_LABEL_LEN + 1), b"1")]))


def test_duplicated_label_is_rejected() -> None:
    assert_rejected_as_malformed(frame([(b"V", b"12530"), (b"I", b"620"), (b"V", b"12530")]))


def test_more_than_max_fields_is_rejected() -> None:
    assert_rejected_as_malformed(frame([(b"F%d" % n, b"v%d" % n) for n in range(MAX_FIELDS + 1)]))


def test_fields_at_the_limits_are_accepted() -> None:
    block = {"L" * MAX_LABEL_LEN: "v" * MAX_VALUE_LEN, **{f"F{n}": "" for n in range(MAX_FIELDS - 1)}}
    blocks, stats = run(encode_block(block))
    assert blocks == [block]
    assert stats.malformed_blocks == 0


def test_field_without_tab_is_rejected() -> None:
    body = b"\r\nV\t12530\r\nBROKEN" + MARK
    assert_rejected_as_malformed(body + bytes([-sum(body) % 256]))


# ---------------------------------------------------------------------------------------------------------
# Recovery: a damaged block costs that block only
#
# The stream is a BMV's: main blocks (which start with PID, as every device's first block does) and history
# blocks (which start with H1). After a damaged block the next intact one must come out.

MAIN = {"PID": "0x203", "V": "12065", "I": "-7625", "SOC": "839"}
HISTORY = {"H1": "-149322", "H2": "-82854", "H17": "6843"}
SEQUENCES = [(MAIN, HISTORY), (HISTORY, MAIN)]


def after_damage(damaged: bytes, following: Block) -> list[Block]:
    blocks, _ = run(encode_block(MAIN) + encode_block(HISTORY) + damaged + encode_block(following))
    return blocks


@pytest.mark.parametrize("corrupt", ["digit", "label", "checksum-byte", "first-cr"])
@pytest.mark.parametrize(("victim", "following"), SEQUENCES, ids=["main", "history"])
def test_single_corrupted_byte_costs_only_its_block(victim: Block, following: Block, corrupt: str) -> None:
    raw = bytearray(encode_block(victim))
    position = {
        "digit": raw.index(b"\t-") + 3,
        "label": raw.index(b"\r\n", 2) + 2,
        "checksum-byte": len(raw) - 1,
        "first-cr": 0,
    }[corrupt]
    raw[position] ^= 0x01
    blocks, stats = run(encode_block(MAIN) + encode_block(HISTORY) + bytes(raw) + encode_block(following))
    assert blocks == [MAIN, HISTORY, following]
    assert stats.blocks_rejected == 1


@pytest.mark.parametrize("following", [MAIN, HISTORY], ids=["main", "history"])
def test_block_after_noise_is_recovered(following: Block) -> None:
    noise = [b"\x00\xff\x07garbage\t\t", b"\r\x07\n\r", b"\r\nnoise\x00", b"\r\nV\t1", b"\r\nLABEL\tvalue"]
    lost = [junk for junk in noise if after_damage(junk, following) != [MAIN, HISTORY, following]]
    assert lost == []


@pytest.mark.parametrize(("victim", "following"), SEQUENCES, ids=["main", "history"])
def test_block_after_a_truncated_block_is_recovered(victim: Block, following: Block) -> None:
    """A block cut short (bytes lost on the line) costs only itself."""
    raw = encode_block(victim)
    lost = [
        raw[:cut][-14:]
        for cut in range(1, len(raw))
        if after_damage(raw[:cut], following) != [MAIN, HISTORY, following]
    ]
    assert lost == []


@pytest.mark.parametrize(("victim", "following"), SEQUENCES, ids=["main", "history"])
def test_block_after_a_damaged_checksum_field_is_recovered(victim: Block, following: Block) -> None:
    """One byte of `<CR><LF>Checksum<TAB>` flipped: that block is lost, the next one is intact."""
    lost = []
    for position in range(len(MARK)):
        raw = bytearray(encode_block(victim))
        raw[len(raw) - len(MARK) - 1 + position] ^= 0x40
        if after_damage(bytes(raw), following) != [MAIN, HISTORY, following]:
            lost.append(bytes(raw[-14:]))
    assert lost == []


def test_partial_block_at_start_costs_only_itself() -> None:
    raw = encode_block(HISTORY)
    for cut in range(1, len(raw)):
        assert run(raw[cut:] + encode_block(MAIN))[0] == [MAIN], cut
        assert run(raw[:cut] + encode_block(MAIN))[0] == [MAIN], cut


# ---------------------------------------------------------------------------------------------------------
# Long runs of junk and crafted streams (issue 11: found by a differential fuzz)

PID_V = {"PID": "0xA053", "V": "12530"}


@pytest.mark.parametrize("junk_length", [1000, 1070, 1090, 1100, 3000, 10_000])
@pytest.mark.parametrize("chunking", CHUNKINGS)
def test_block_after_a_long_run_of_junk_is_kept_in_any_chunking(junk_length: int, chunking: str) -> None:
    blocks, stats = run(b"x" * junk_length + encode_block(PID_V), CHUNKINGS[chunking])
    assert blocks == [PID_V]
    assert (stats.checksum_errors, stats.malformed_blocks, stats.bytes_discarded) == (0, 0, junk_length)


@pytest.mark.parametrize("junk_length", [1000, 1100, 5000])
@pytest.mark.parametrize("chunking", CHUNKINGS)
def test_block_after_a_long_line_of_junk_is_kept_in_any_chunking(junk_length: int, chunking: str) -> None:
    """Junk that begins like a block (CR LF) but never ends: the candidate overflows, the block after it
    is still found, and the count of malformed blocks is the same whatever the read size."""
    blocks, stats = run(b"\r\nV\t" + b"1" * junk_length + encode_block(PID_V), CHUNKINGS[chunking])
    assert blocks == [PID_V]
    assert run(b"\r\nV\t" + b"1" * junk_length + encode_block(PID_V))[1] == stats


CRAFTED = (b"\r\nPID\t0xA053" * 3000 + b"\r\nChecksum\tX") * 3 + encode_block(PID_V)


@pytest.mark.parametrize("chunking", CHUNKINGS)
def test_crafted_block_starts_between_false_checksums_count_the_same_in_any_chunking(chunking: str) -> None:
    whole_blocks, whole_stats = run(CRAFTED)
    blocks, stats = run(CRAFTED, CHUNKINGS[chunking])
    assert blocks == whole_blocks == [PID_V]
    assert stats == whole_stats
    assert stats.malformed_blocks > 0
    assert stats.checksum_errors == 3


def test_overlong_hex_message_ends_at_the_same_byte_in_any_chunking() -> None:
    data = b":" + b"A" * (MAX_HEX_LEN + 300) + b"\n" + encode_block(PID_V)
    results = {name: run(data, chunking) for name, chunking in CHUNKINGS.items()}
    assert all(result == results["whole"] for result in results.values())
    assert results["whole"][0] == [PID_V]
