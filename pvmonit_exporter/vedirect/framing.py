"""Bytes → checksum-valid VE.Direct text blocks. Pure: no I/O, no threads.

A block is the bytes from the CR LF before its first label through the byte after `Checksum<TAB>`; their
sum modulo 256 is 0. Asynchronous HEX messages (`:` … LF, checksum rule 0x55) may arrive anywhere, even inside
a block: they are cut out of the text stream first, so the block around them still validates.

A candidate block that fails its checksum or its structure is dropped whole: nothing of it is ever returned,
so none of its fields can leak into the next block. Garbage or a truncated block runs into the block that
follows it; that block is still recovered when it starts with a label that begins blocks on this stream
(PID, or the first label of any block already delivered, such as a BMV's H1). Otherwise it is lost too, and
the stream is back in step at the next one. Buffers never exceed the protocol's size limits.

The work is done on whole chunks with `bytes.find` and compiled regular expressions, never byte by byte.
"""

import re
import zlib
from dataclasses import dataclass

# Doc 3.22 "Implementation guidelines": a 9-byte label buffer and a 33-byte value buffer.
MAX_LABEL_LEN = 9
MAX_VALUE_LEN = 33
# Doc 3.22 says 18 fields at most; SmartSolar firmware sends 18 plus Checksum. A little headroom keeps a newer
# firmware working while memory stays bounded.
MAX_FIELDS = 24
# The longest HEX message in practice is a register dump of a few dozen bytes.
MAX_HEX_LEN = 1024

_CHECKSUM_MARK = b"\r\nChecksum\t"
# A device sends a handful of block types (a BMV two); more first labels than this would mean noise.
_MAX_BLOCK_STARTS = 8
_LINE_MAX = 2 + MAX_LABEL_LEN + 1 + MAX_VALUE_LEN
MAX_BLOCK_LEN = MAX_FIELDS * _LINE_MAX + len(_CHECKSUM_MARK) + 1

# A block's body is checked as text decoded from latin-1 (one char per byte, never fails) by one regular
# expression; once it matches, plain splitting at CR LF and TAB is exact, and far faster than capturing groups.
_LABEL = rf"[A-Za-z0-9_#]{{1,{MAX_LABEL_LEN}}}"
_VALUE = rf"[\x20-\x7e]{{0,{MAX_VALUE_LEN}}}"
# Possessive quantifiers: nothing to backtrack into, a third faster.
_BODY_RE = re.compile(rf"(?:\r\n{_LABEL}+\t{_VALUE}+){{1,{MAX_FIELDS}}}+")
_ADLER_EXACT_LEN = 256  # 256 × 255 < 65521: see _byte_sum
_NOT_HEX_RE = re.compile(rb"[^0-9A-Fa-f]")

Block = dict[str, str]
"""One checksum-valid block: label → raw value as sent, in the order received, `Checksum` excluded."""


@dataclass
class DecoderStats:
    """Counters since the decoder was made; they only grow."""

    blocks_valid: int = 0
    checksum_errors: int = 0
    malformed_blocks: int = 0
    hex_valid: int = 0
    hex_invalid: int = 0
    bytes_received: int = 0
    bytes_discarded: int = 0

    @property
    def blocks_rejected(self) -> int:
        return self.checksum_errors + self.malformed_blocks


def hex_message_is_valid(body: bytes) -> bool:
    """`body` is a HEX message without its `:` and LF: command nibble, data bytes, checksum; sum == 0x55."""
    if len(body) < 3 or len(body) % 2 == 0 or _NOT_HEX_RE.search(body):
        return False
    total = int(body[:1], 16) + sum(bytes.fromhex(body[1:].decode("ascii")))
    return total % 256 == 0x55


def encode_block(fields: Block) -> bytes:
    """Frame `fields` as a device would: CR LF label TAB value …, then `Checksum` and the byte that makes the
    sum 0. The inverse of decoding; used by the simulator and tests."""
    body = b"".join(b"\r\n%s\t%s" % (k.encode("ascii"), v.encode("ascii")) for k, v in fields.items())
    body += _CHECKSUM_MARK
    return body + bytes([-sum(body) % 256])


def encode_hex_message(command: int, data: bytes) -> bytes:
    """A HEX message `:<command><data…><checksum>\\n` whose checksum satisfies the 0x55 rule."""
    checksum = (0x55 - command - sum(data)) % 256
    return b":%X%s\n" % (command, (data + bytes([checksum])).hex().upper().encode("ascii"))


class Decoder:
    """Streaming decoder: `feed(chunk)` returns the blocks completed by that chunk.

    Results do not depend on how the stream is cut into chunks.
    """

    def __init__(self) -> None:
        self.stats = DecoderStats()
        self._text = bytearray()  # text bytes (HEX removed) not yet consumed
        self._search_from = 0  # where the next `\r\nChecksum\t` search may start in `_text`
        self._hex: bytearray | None = None  # body of the HEX message in progress, None in text mode
        self._first_labels = {"PID"}  # labels that begin blocks on this stream...
        self._block_starts = {b"\r\nPID\t"}  # ...as they appear in it: `\r\nLABEL\t`

    def reset(self) -> None:
        """Forget any partial block or HEX message (after a reconnect); counters are kept."""
        self.stats.bytes_discarded += len(self._text) + (0 if self._hex is None else len(self._hex) + 1)
        self._text.clear()
        self._search_from = 0
        self._hex = None

    def close(self) -> None:
        """The stream has ended (end of a recording): a partial block or HEX message can never complete, so
        its bytes are counted as discarded."""
        self.reset()

    def feed(self, data: bytes) -> list[Block]:
        self.stats.bytes_received += len(data)
        blocks: list[Block] = []
        pos, end = 0, len(data)
        while pos < end:
            if self._hex is not None:
                pos = self._feed_hex(self._hex, data, pos)
                continue
            colon = data.find(b":", pos)
            stop = end if colon < 0 else colon
            self._text += data[pos:stop]
            if colon < 0:
                break
            if self._text.endswith(_CHECKSUM_MARK):
                self._text += b":"  # a checksum byte that happens to be ':'
            else:
                self._hex = bytearray()
            pos = colon + 1
        self._take_blocks(blocks)
        return blocks

    def _feed_hex(self, hex_body: bytearray, data: bytes, pos: int) -> int:
        """Consume HEX message bytes from `pos` into `hex_body`; return where reading resumes."""
        newline = data.find(b"\n", pos)
        stop = len(data) if newline < 0 else newline
        bad = _NOT_HEX_RE.search(data, pos, stop)
        if bad is not None:
            # A HEX message cut short (its LF lost): drop it and read that byte again as text.
            self._end_hex(bytes(hex_body) + data[pos : bad.start()], terminated=False)
            return bad.start()
        hex_body += data[pos:stop]
        if len(hex_body) > MAX_HEX_LEN:
            self._end_hex(bytes(hex_body), terminated=False)
            return stop
        if newline < 0:
            return stop
        self._end_hex(bytes(hex_body), terminated=True)
        return newline + 1

    def _end_hex(self, body: bytes, *, terminated: bool) -> None:
        self._hex = None
        if terminated and hex_message_is_valid(body):
            self.stats.hex_valid += 1
        else:
            self.stats.hex_invalid += 1
            self.stats.bytes_discarded += len(body) + 1 + terminated

    def _take_blocks(self, blocks: list[Block]) -> None:
        text = self._text
        first_labels = self._first_labels
        mark_len = len(_CHECKSUM_MARK)
        consumed = valid = discarded = 0
        search = self._search_from
        while True:
            mark = text.find(_CHECKSUM_MARK, search)
            if mark < 0 or mark + mark_len >= len(text):
                break
            block_end = mark + mark_len + 1
            # Blocks follow each other: the next one usually starts right where the last ended.
            start = consumed if text.startswith(b"\r\n", consumed) else text.find(b"\r\n", consumed, mark + 2)
            raw = text[start:block_end]
            block = _parse(raw)
            if block is None:
                block, start = self._recover(bytes(raw), start)
            if block is not None:
                discarded += start - consumed
                valid += 1
                if (first := next(iter(block))) not in first_labels:
                    self._learn_start(first)
                blocks.append(block)
            else:
                if raw[-1] == 0x0D:
                    # Its checksum byte may be lost: this CR can be the start of the next block. Keep it.
                    block_end -= 1
                discarded += block_end - consumed
            consumed = search = block_end
        self.stats.blocks_valid += valid
        self.stats.bytes_discarded += discarded
        if consumed:
            del text[:consumed]
        if len(text) > MAX_BLOCK_LEN:
            self._drop_overflow()
        # A mark may straddle two chunks: search again from just before the end.
        self._search_from = max(0, len(text) - mark_len)

    def _drop_overflow(self) -> None:
        """No checksum within the longest possible block: the bytes so far are garbage. Keep only a possible
        block start (the last CR LF, or a trailing CR)."""
        text = self._text
        keep_from = text.rfind(b"\r\n")
        if keep_from < 0 or len(text) - keep_from > MAX_BLOCK_LEN:
            keep_from = len(text) - 1 if text.endswith(b"\r") else len(text)
        self.stats.bytes_discarded += keep_from
        self.stats.malformed_blocks += 1
        del text[:keep_from]

    def _recover(self, raw: bytes, offset: int) -> tuple[Block | None, int]:
        """A candidate block failed: count it once, then look for a block that began inside it.

        A block cut short (a lost Checksum line, an unplugged cable) or noise runs into the next block, and the
        pair fails. The next block is recovered when it starts with a label that starts blocks: PID (every
        device's first label), the first label of any block this stream has already delivered (a BMV's history
        block starts with H1), or the failed candidate's own first label. No other restart is tried: a suffix of
        a corrupted block passes the checksum once in 256 tries, and its fields must never be reported.
        """
        if _byte_sum(raw):
            self.stats.checksum_errors += 1
        else:
            self.stats.malformed_blocks += 1
        tab = raw.find(b"\t", 2, 2 + MAX_LABEL_LEN + 1)
        starts = self._block_starts | {raw[: tab + 1]} if tab > 2 else self._block_starts
        position = 0
        while True:
            found = [i for i in (raw.find(start, position + 2) for start in starts) if i > 0]
            if not found:
                return None, offset
            position = min(found)
            block = _parse(raw[position:])
            if block is not None:
                return block, offset + position

    def _learn_start(self, first: str) -> None:
        if len(self._first_labels) < _MAX_BLOCK_STARTS:
            self._first_labels.add(first)
            self._block_starts.add(b"\r\n%s\t" % first.encode("ascii"))


def _byte_sum(raw: bytes | bytearray) -> int:
    """The sum of the bytes, modulo 256. Adler-32's first half is 1 + that sum modulo 65521, exact while the
    sum stays below 65521 (up to 256 bytes: most blocks), and zlib computes it in C, 6x faster than sum()."""
    if len(raw) <= _ADLER_EXACT_LEN:
        return (zlib.adler32(raw) - 1) & 0xFF
    return sum(raw) & 0xFF


def _parse(raw: bytes | bytearray) -> Block | None:
    """The block in `raw`, or None when its checksum or its structure is wrong."""
    if _byte_sum(raw):
        return None
    body = raw[: -len(_CHECKSUM_MARK) - 1].decode("latin-1")
    if not _BODY_RE.fullmatch(body):
        return None
    parts = iter(body.replace("\r\n", "\t").split("\t"))  # "", label, value, label, value, ...
    next(parts)
    block = dict(zip(parts, parts, strict=False))  # pairs by construction: the expression matched
    if len(block) != body.count("\r\n"):  # a label sent twice: not one device's block
        return None
    return block
