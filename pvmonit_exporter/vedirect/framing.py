"""Bytes → checksum-valid VE.Direct text blocks. Pure: no I/O, no threads.

A block is the bytes from the CR LF before its first label through the byte after `Checksum<TAB>`; their
sum modulo 256 is 0. Asynchronous HEX messages (`:` … LF, checksum rule 0x55) may arrive anywhere, even inside
a block: they are cut out of the text stream first, so the block around them still validates.

A candidate block that fails its checksum or its structure is dropped whole: nothing of it is ever returned,
so none of its fields can leak into the next block. Garbage or a truncated block runs into the block that
follows it; that block is still recovered when it starts with a label that begins blocks on this stream
(PID, or the first label of any block already delivered, such as a BMV's H1). Otherwise it is lost too, and
the stream is back in step at the next one. Buffers never exceed the protocol's size limits.

Bytes before a CR LF can begin no block and are dropped at once. A candidate that grows past MAX_BLOCK_LEN
without its checksum is dropped at exactly that length (one malformed block), so neither the blocks found nor
the counters depend on how the stream is cut into reads. Recovery inside a failed candidate tries only its last
MAX_FIELDS line starts: the work per byte is bounded, even on a stream crafted to defeat it.

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
# HEX messages kept for a reader between two reads; a history dump is 32 replies.
MAX_KEPT_HEX = 256

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

    def __init__(self, *, keep_hex: bool = False) -> None:
        """`keep_hex`: keep the valid HEX messages for `take_hex_messages` (a reader that talks HEX)."""
        self.stats = DecoderStats()
        self._hex_messages: list[bytes] | None = [] if keep_hex else None
        self._text = bytearray()  # text bytes (HEX removed) not yet consumed
        self._search_from = 0  # where the next `\r\nChecksum\t` search may start in `_text`
        self._hex: bytearray | None = None  # body of the HEX message in progress, None in text mode
        self._first_labels = {"PID"}  # labels that begin blocks on this stream...
        self._block_starts = {b"\r\nPID\t"}  # ...as they appear in it: `\r\nLABEL\t`

    def take_hex_messages(self) -> list[bytes]:
        """The valid HEX messages (without `:` and LF) completed since the last call, oldest first. At most
        MAX_KEPT_HEX are kept: a caller that stops taking them loses the oldest, never memory."""
        if not self._hex_messages:
            return []
        messages, self._hex_messages = self._hex_messages, []
        return messages

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
        room = MAX_HEX_LEN + 1 - len(hex_body)  # the byte that would make it too long ends it, in any chunking
        bad = _NOT_HEX_RE.search(data, pos, min(stop, pos + room))
        if bad is not None:
            # A HEX message cut short (its LF lost): drop it and read that byte again as text.
            self._end_hex(bytes(hex_body) + data[pos : bad.start()], terminated=False)
            return bad.start()
        if stop - pos >= room:
            self._end_hex(bytes(hex_body) + data[pos : pos + room], terminated=False)
            return pos + room
        hex_body += data[pos:stop]
        if newline < 0:
            return stop
        self._end_hex(bytes(hex_body), terminated=True)
        return newline + 1

    def _end_hex(self, body: bytes, *, terminated: bool) -> None:
        self._hex = None
        if terminated and hex_message_is_valid(body):
            self.stats.hex_valid += 1
            if self._hex_messages is not None:
                if len(self._hex_messages) >= MAX_KEPT_HEX:
                    del self._hex_messages[0]
                self._hex_messages.append(body)
        else:
            self.stats.hex_invalid += 1
            self.stats.bytes_discarded += len(body) + 1 + terminated

    def _take_blocks(self, blocks: list[Block]) -> None:
        """Cut `_text` into candidate blocks, exactly as if it had arrived one byte at a time.

        A candidate starts at a CR LF and ends with the byte after the next checksum mark. Bytes before the
        first CR LF can begin no block and are dropped at once, so junk never pushes a block out of the
        buffer. A candidate that reaches MAX_BLOCK_LEN + 1 bytes without its checksum overflows at exactly that
        length, whatever the chunking: chunk sizes change neither the blocks found nor the counters.
        """
        text = self._text
        mark_len = len(_CHECKSUM_MARK)
        pos = valid = discarded = 0
        search = self._search_from
        while True:
            if not text.startswith(b"\r\n", pos):
                start = text.find(b"\r\n", pos)
                if start < 0:  # no block begins yet; a trailing CR may be the start of one
                    start = len(text) - 1 if text.endswith(b"\r") and len(text) > pos else len(text)
                    discarded += start - pos
                    pos = start
                    break
                discarded += start - pos
                pos = start
            limit = pos + MAX_BLOCK_LEN + 1
            mark = text.find(_CHECKSUM_MARK, max(search, pos), limit)
            if mark >= 0 and mark + mark_len < min(len(text), limit):
                block_end = mark + mark_len + 1
                raw = text[pos:block_end]
                block = _parse(raw)
                if block is None:
                    block, skipped = self._recover(bytes(raw))
                    discarded += skipped
                if block is not None:
                    valid += 1
                    if (first := next(iter(block))) not in self._first_labels:
                        self._learn_start(first)
                    blocks.append(block)
                else:
                    if raw[-1] == 0x0D:
                        # Its checksum byte may be lost: this CR can be the start of the next block. Keep it.
                        block_end -= 1
                    discarded += block_end - pos
                pos = search = block_end
            elif len(text) >= limit:
                restart = self._overflow_restart(text, pos, limit)
                self.stats.malformed_blocks += 1
                discarded += restart - pos
                pos = restart
            else:
                break
        self.stats.blocks_valid += valid
        self.stats.bytes_discarded += discarded
        del text[:pos]
        # The loop searched all of `text`; a mark may straddle two chunks: search again from just before the end.
        self._search_from = max(0, len(text) - mark_len)

    @staticmethod
    def _overflow_restart(text: bytearray, pos: int, limit: int) -> int:
        """The candidate at `pos` grew to `limit` without a checksum: none of it before the earliest of its
        last MAX_FIELDS + 1 line starts can belong to a block (a block has at most MAX_FIELDS fields and its
        Checksum line). Return where the next candidate may begin."""
        restart = limit - 1 if text[limit - 1] == 0x0D else limit
        end = limit
        for _ in range(MAX_FIELDS + 1):
            line = text.rfind(b"\r\n", pos + 1, end)
            if line < 0:
                break
            restart = end = line
        return restart

    def _recover(self, raw: bytes) -> tuple[Block | None, int]:
        """A candidate block failed: count it once, then look for a block that began inside it; return that
        block and how many bytes precede it, or None.

        A block cut short (a lost Checksum line, an unplugged cable) or noise runs into the next block, and the
        pair fails. The next block is recovered when it starts with a label that starts blocks: PID (every
        device's first label), the first label of any block this stream has already delivered (a BMV's history
        block starts with H1), or the failed candidate's own first label. No other restart is tried: a suffix of
        a corrupted block passes the checksum once in 256 tries, and its fields must never be reported.
        Only the last MAX_FIELDS line starts can begin a block that ends here, so the work is bounded.
        """
        if _byte_sum(raw):
            self.stats.checksum_errors += 1
        else:
            self.stats.malformed_blocks += 1
        tab = raw.find(b"\t", 2, 2 + MAX_LABEL_LEN + 1)
        starts = self._block_starts | {raw[: tab + 1]} if tab > 2 else self._block_starts
        lines: list[int] = []
        end = len(raw) - len(_CHECKSUM_MARK) - 1  # the Checksum line itself begins no block
        while len(lines) < MAX_FIELDS:
            end = raw.rfind(b"\r\n", 1, end)
            if end < 0:
                break
            lines.append(end)
        for line in reversed(lines):  # earliest first: the longest block wins, as when fed whole
            if raw.startswith(tuple(starts), line) and (block := _parse(raw[line:])) is not None:
                return block, line
        return None, 0

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
