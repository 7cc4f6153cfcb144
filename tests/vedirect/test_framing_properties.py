"""Properties of framing.Decoder over generated streams (hypothesis), and the special checksum bytes."""

import itertools
import random
import re
import string
from collections.abc import Iterable

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pvmonit_exporter.vedirect.framing import (
    MAX_BLOCK_LEN,
    MAX_FIELDS,
    MAX_HEX_LEN,
    MAX_LABEL_LEN,
    MAX_VALUE_LEN,
    Block,
    Decoder,
    encode_block,
    encode_hex_message,
)

MARK = b"\r\nChecksum\t"
LABEL_CHARS = string.ascii_letters + string.digits + "_#"
VALUE_CHARS = "".join(chr(c) for c in range(0x20, 0x7F) if c != ord(":"))
SPECIAL_CHECKSUMS = tuple(b":\r\n\t")
COLON = ord(":")

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def with_checksum(fields: Block, target: int) -> Block:
    """`fields` with the end of its last value changed so that the block's checksum byte is `target`."""
    last = list(fields)[-1]
    trial = {**fields, last: fields[last][: MAX_VALUE_LEN - 4] + "    "}
    missing = (encode_block(trial)[-1] - target) % 256  # what the four spaces must add up to
    extra = []
    for _ in range(4):
        step = min(missing, 0x7E - 0x20)
        if step == COLON - 0x20:
            step -= 1
        extra.append(chr(0x20 + step))
        missing -= step
    result = {**fields, last: trial[last][:-4] + "".join(extra)}
    assert encode_block(result)[-1] == target
    return result


labels = st.text(LABEL_CHARS, min_size=1, max_size=MAX_LABEL_LEN).filter(lambda label: label != "Checksum")
values = st.text(VALUE_CHARS, max_size=MAX_VALUE_LEN)
hex_messages = st.builds(encode_hex_message, st.integers(0, 15), st.binary(max_size=24))


@st.composite
def blocks(draw: st.DrawFn, first: str | None = None) -> Block:
    """1..18 random fields; `first` forces the first label."""
    fields = draw(st.dictionaries(labels, values, min_size=1, max_size=18))
    if first is not None:
        rest = [(label, value) for label, value in fields.items() if label != first][:17]
        fields = dict([(first, draw(values)), *rest])
    target = draw(st.sampled_from((None, *SPECIAL_CHECKSUMS)))
    return fields if target is None else with_checksum(fields, target)


def cut(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    edges = [0, *sorted({c for c in cuts if 0 < c < len(data)}), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def feed_all(decoder: Decoder, chunks: Iterable[bytes]) -> list[Block]:
    return [block for chunk in chunks for block in decoder.feed(chunk)]


def decode_cut(data: bytes, cuts: Iterable[int]) -> list[Block]:
    decoder = Decoder()
    result = feed_all(decoder, cut(data, cuts))
    decoder.close()
    return result


def pending(decoder: Decoder) -> int:
    return len(decoder._text) + (0 if decoder._hex is None else len(decoder._hex) + 1)


def checksum_byte_positions(stream: bytes) -> set[int]:
    return {m.end() for m in re.finditer(re.escape(MARK), stream)}


# ---------------------------------------------------------------------------------------------------------
# Valid blocks and HEX messages come back exactly


@FAST
@given(st.lists(blocks(), min_size=1, max_size=5), st.data())
def test_valid_blocks_survive_chunking_and_hex_messages_anywhere(block_list: list[Block], data: st.DataObject) -> None:
    stream = b"".join(encode_block(block) for block in block_list)
    # The one place a HEX message cannot go: between `Checksum<TAB>` and its byte, where ':' *is* the byte.
    forbidden = checksum_byte_positions(stream)
    interesting = (
        {m.start() for m in re.finditer(rb"\t", stream)}  # between a label and its TAB
        | {m.end() for m in re.finditer(rb"\t", stream)}  # between the TAB and the value
        | {m.end() + 1 for m in re.finditer(re.escape(MARK), stream)}  # right after the checksum byte
        | {m.start() + 1 for m in re.finditer(rb"\r\n", stream)}  # between CR and LF
    ) - forbidden
    positions = st.one_of(st.sampled_from(sorted(interesting)), st.integers(0, len(stream))).filter(
        lambda p: p not in forbidden
    )
    inserts = data.draw(st.lists(st.tuples(positions, hex_messages), max_size=6))
    mixed = stream
    for position, message in sorted(inserts, key=lambda item: item[0], reverse=True):
        mixed = mixed[:position] + message + mixed[position:]
    cuts = data.draw(st.lists(st.integers(0, len(mixed)), max_size=12))

    decoder = Decoder()
    assert feed_all(decoder, cut(mixed, cuts)) == block_list
    stats = decoder.stats
    assert stats.hex_valid == len(inserts)
    assert (stats.checksum_errors, stats.malformed_blocks, stats.hex_invalid) == (0, 0, 0)
    decoder.close()
    assert stats.bytes_discarded == 0
    assert stats.bytes_received == len(mixed)


@pytest.mark.parametrize("target", SPECIAL_CHECKSUMS, ids=repr)
def test_special_checksum_bytes(target: int) -> None:
    first = with_checksum({"PID": "0xA042", "V": "12530", "CS": "3"}, target)
    second = with_checksum({"H19": "8272", "H20": "0"}, target)
    raw_first, raw_second = encode_block(first), encode_block(second)
    assert raw_first[-1] == raw_second[-1] == target
    message = encode_hex_message(0xA, bytes.fromhex("0102000300"))
    streams = [
        raw_first + raw_second,
        raw_first + message + raw_second + message,
        message + raw_first + message + message + raw_second,
    ]
    for stream in streams:
        for size in (1, 2, len(MARK), len(stream)):
            assert decode_cut(stream, range(size, len(stream), size)) == [first, second], (stream, size)


# ---------------------------------------------------------------------------------------------------------
# Corruption: nothing of a damaged block comes out, the next intact block does

_FIELD = rb"\r\n([A-Za-z0-9_#]{1,%d})\t[\x20-\x7e]{0,%d}" % (MAX_LABEL_LEN, MAX_VALUE_LEN)
_BLOCK_SHAPE = re.compile(rb"((?:%s)+)\r\nChecksum\t[\x00-\xff]" % _FIELD)
_LABEL = re.compile(_FIELD)


def could_be_a_block(raw: bytes) -> bool:
    """The protocol's own definition, written independently: fields, `Checksum`, a sum of 0."""
    match = _BLOCK_SHAPE.fullmatch(raw)
    if match is None or sum(raw) % 256:
        return False
    found = _LABEL.findall(match.group(1))
    return len(found) <= MAX_FIELDS and len(set(found)) == len(found)


def another_block_hides_in(stream: bytes, start: int, stop: int) -> bool:
    """Does a checksum-valid block other than the intact ones begin in stream[start:stop]? Then a damaged
    block is indistinguishable from a genuine one, and no decoder can tell."""
    ends = [m.end() + 1 for m in re.finditer(re.escape(MARK), stream) if m.end() < len(stream)]
    starts = [m.start() for m in re.finditer(rb"\r\n", stream) if start <= m.start() < stop]
    return any(could_be_a_block(stream[a:b]) for a in starts for b in ends if b > a)


@st.composite
def flipped(draw: st.DrawFn, raw: bytes) -> bytes:
    position = draw(st.integers(0, len(raw) - 1))
    new = raw[position] ^ draw(st.integers(1, 255))
    # A ':' inside the text would start a HEX message; only the checksum byte may be one.
    assume(new != COLON or position == len(raw) - 1)
    return raw[:position] + bytes([new]) + raw[position + 1 :]


@st.composite
def with_nul(draw: st.DrawFn, fields: Block) -> bytes:
    """A NUL byte inside one label or value: the checksum is unchanged."""
    index = draw(st.integers(0, len(fields) - 1))
    label, value = list(fields.items())[index]
    in_label = draw(st.booleans())
    text = label if in_label else value
    at = draw(st.integers(0, len(text)))
    text = text[:at] + "\x00" + text[at:]
    items = list(fields.items())
    items[index] = (text, value) if in_label else (label, text)
    raw = encode_block(dict(items))
    assert raw[-1] == encode_block(fields)[-1]
    return raw


@st.composite
def truncated(draw: st.DrawFn, raw: bytes) -> bytes:
    anywhere = st.integers(1, len(raw) - 1)
    in_checksum_field = st.integers(len(raw) - len(MARK) - 1, len(raw) - 1)
    return raw[: draw(anywhere | in_checksum_field | st.just(len(raw) - 1))]


def check_damaged_block(before: Block | None, damaged: bytes, after: Block, cuts: list[int]) -> None:
    head = b"" if before is None else encode_block(before)
    stream = head + damaged + encode_block(after)
    assume(not another_block_hides_in(stream, len(head), len(head) + len(damaged)))
    expected = ([] if before is None else [before]) + [after]
    assert decode_cut(stream, cuts) == expected


def next_block(data: st.DataObject, before: Block | None) -> Block:
    """The intact block after the damaged one, as a device sends it: starting with PID (every device's
    first label) or with the first label of a block already delivered."""
    starts = ["PID"] if before is None else ["PID", next(iter(before))]
    return data.draw(blocks(first=data.draw(st.sampled_from(starts))))


chunk_cuts = st.lists(st.integers(0, 2000), max_size=10)


@FAST
@given(st.none() | blocks(), blocks(), st.data(), chunk_cuts)
def test_flipped_byte(before: Block | None, victim: Block, data: st.DataObject, cuts: list[int]) -> None:
    check_damaged_block(before, data.draw(flipped(encode_block(victim))), next_block(data, before), cuts)


@FAST
@given(st.none() | blocks(), blocks(), st.data(), chunk_cuts)
def test_nul_byte_in_label_or_value(before: Block | None, victim: Block, data: st.DataObject, cuts: list[int]) -> None:
    check_damaged_block(before, data.draw(with_nul(victim)), next_block(data, before), cuts)


@FAST
@given(st.none() | blocks(), blocks(), st.data(), chunk_cuts)
def test_truncated_block_then_a_fresh_one(
    before: Block | None, victim: Block, data: st.DataObject, cuts: list[int]
) -> None:
    check_damaged_block(before, data.draw(truncated(encode_block(victim))), next_block(data, before), cuts)


# ---------------------------------------------------------------------------------------------------------
# Garbage: never raises, memory stays bounded


def assert_bounded(decoder: Decoder, chunk_size: int) -> None:
    assert len(decoder._text) <= MAX_BLOCK_LEN + chunk_size
    assert decoder._hex is None or len(decoder._hex) <= MAX_HEX_LEN


@FAST
@given(st.binary(max_size=5000), st.integers(1, 600))
def test_random_garbage_never_raises_and_stays_bounded(garbage: bytes, chunk_size: int) -> None:
    decoder = Decoder()
    for chunk in cut(garbage, range(chunk_size, len(garbage), chunk_size)):
        decoder.feed(chunk)
        assert_bounded(decoder, chunk_size)
    assert decoder.stats.bytes_received == len(garbage)


def megabytes_of(pattern: bytes, size: int = 2_000_000) -> bytes:
    return (pattern * (size // len(pattern) + 1))[:size]


GARBAGE = {
    "random": random.Random(7).randbytes(4_000_000),
    "no-line-break": megabytes_of(b"V\t12530 I\t620 "),
    "cr-only": megabytes_of(b"\rLABEL\t1"),
    "endless-value": b"\r\nV\t" + megabytes_of(b"1"),
    "hex-without-newline": b":" + megabytes_of(b"0123456789ABCDEF"),
    "colons": megabytes_of(b":", 500_000),
    "bad-hex-messages": megabytes_of(b":A0102000346\n:A5" + b"5" * 40 + b"\n"),
}


@pytest.mark.parametrize("chunk_size", [4096, 65536])
@pytest.mark.parametrize("kind", GARBAGE)
def test_megabytes_of_garbage_keep_buffers_bounded(kind: str, chunk_size: int) -> None:
    garbage = GARBAGE[kind]
    decoder = Decoder()
    for start in range(0, len(garbage), chunk_size):
        decoder.feed(garbage[start : start + chunk_size])
        assert_bounded(decoder, chunk_size)
    stats = decoder.stats
    assert (stats.blocks_valid, stats.hex_valid) == (0, 0)
    assert stats.bytes_received == len(garbage) == stats.bytes_discarded + pending(decoder)
    block = {"PID": "0xA042", "V": "12530"}
    # The garbage costs one block at most: the second one after it comes out.
    assert decoder.feed(encode_block(block) * 2)[-1:] == [block]


# ---------------------------------------------------------------------------------------------------------
# Accounting: every byte received is in a valid block, a valid HEX message, discarded, or pending


@st.composite
def damaged_block(draw: st.DrawFn) -> bytes:
    victim = draw(blocks())
    how = draw(st.sampled_from(("flip", "truncate", "nul")))
    if how == "nul":
        return draw(with_nul(victim))
    if how == "flip":
        return draw(flipped(encode_block(victim)))
    # Not cut right after `Checksum<TAB>`: a HEX message there would give its ':' as the checksum byte.
    return draw(truncated(encode_block(victim)[:-1]))


# Garbage without LF, ending in NUL: it cannot complete a valid HEX message, so the valid ones are known.
line_noise = st.binary(max_size=200).map(lambda noise: noise.replace(b"\n", b"") + b"\x00")


@FAST
@given(
    st.lists(
        st.one_of(
            blocks().map(lambda block: ("block", encode_block(block))),
            hex_messages.map(lambda message: ("hex", message)),
            damaged_block().map(lambda raw: ("damaged", raw)),
            line_noise.map(lambda noise: ("noise", noise)),
        ),
        max_size=10,
    ),
    st.lists(st.integers(0, 3000), max_size=10),
)
def test_every_byte_is_accounted_for(items: list[tuple[str, bytes]], cuts: list[int]) -> None:
    stream = b"".join(raw for _, raw in items)
    hex_lengths = [len(raw) for kind, raw in items if kind == "hex"]
    decoder = Decoder()
    got: list[Block] = []
    for chunk in cut(stream, cuts):
        got += decoder.feed(chunk)
        stats = decoder.stats
        block_bytes = sum(len(encode_block(block)) for block in got)
        hex_bytes = sum(hex_lengths[: stats.hex_valid])  # valid HEX messages come out in stream order
        assert stats.bytes_received == block_bytes + hex_bytes + stats.bytes_discarded + pending(decoder)
    decoder.close()
    stats = decoder.stats
    assert stats.hex_valid == len(hex_lengths)
    assert pending(decoder) == 0
    block_bytes = sum(len(encode_block(block)) for block in got)
    assert stats.bytes_received == len(stream) == block_bytes + sum(hex_lengths) + stats.bytes_discarded


# ---------------------------------------------------------------------------------------------------------
# A burst of junk of any length, then valid blocks: read size never matters (issue 11)


def repeated(pattern: bytes, length: int) -> bytes:
    return (pattern * (length // max(1, len(pattern)) + 1))[:length]


junk_bursts = st.one_of(
    st.binary(max_size=3000),
    st.builds(repeated, st.binary(min_size=1, max_size=24), st.integers(0, 6000)),
    st.builds(repeated, st.sampled_from((b"x", b"\r\nPID\t", b"\r\nV\t1", b"\r", b"0A", b":0A")), st.integers(0, 6000)),
)


def decode_with_stats(data: bytes, cuts: Iterable[int]) -> tuple[list[Block], object]:
    decoder = Decoder()
    result = feed_all(decoder, cut(data, cuts))
    decoder.close()
    return result, decoder.stats


@FAST
@given(junk_bursts, st.lists(blocks(first="PID"), min_size=1, max_size=3), st.data())
def test_junk_burst_then_valid_blocks_any_chunking(junk: bytes, block_list: list[Block], data: st.DataObject) -> None:
    stream = junk + b"".join(encode_block(block) for block in block_list)
    whole, whole_stats = decode_with_stats(stream, [])
    size = data.draw(st.sampled_from((1, 2, 7, 64, 1000, 4096)))
    by_size = decode_with_stats(stream, range(size, len(stream), size))
    by_cuts = decode_with_stats(stream, data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    assert by_size == (whole, whole_stats)
    assert by_cuts == (whole, whole_stats)
    # Junk can at worst merge into the first block; every later one comes out, and all of them do when the
    # junk holds no line feed (nothing in it can end a line or a HEX message).
    assert whole[len(whole) - len(block_list) + 1 :] == block_list[1:]
    if b"\n" not in junk:
        assert whole == block_list
