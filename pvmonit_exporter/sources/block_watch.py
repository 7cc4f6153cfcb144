"""When a port's data deserves a word to the user: silence, bytes that never make a block, and the return.

Pure (the caller passes the clock and what it read), shared by the daemon's readers and `read`, so that both
tell a silent port from a port sending something that is not VE.Direct at 19200 baud in the same words.
A valid HEX message counts as much as a valid block: the device is there, at the right speed (it pauses its
text while it answers requests).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class NoValidBlock:
    """No valid block for `seconds` (since the last one, or since the port was opened): the timeout itself at
    the first report, the time elapsed at repeats."""

    seconds: float
    bytes_received: int  # since the last valid block: 0 means nothing arrived at all

    def describe(self) -> str:
        head = f"no valid block for {self.seconds:g} s"
        if self.bytes_received == 0:
            return f"{head}: nothing arrived (check the cable and the port; is the device asleep?)"
        return (f"{head}: {self.bytes_received} bytes arrived but no valid VE.Direct block "
                "(wrong speed, or not a VE.Direct device?)")


@dataclass(frozen=True)
class ReceivingAgain:
    """A valid block after a NoValidBlock was reported."""

    def describe(self) -> str:
        return "receiving again"


Report = NoValidBlock | ReceivingAgain


class BlockWatch:
    """Reports once when no valid block arrived for `timeout` seconds, and once when blocks come back.

    With `repeat_every`, the silence report is repeated at most that often (for `read`, whose user watches a
    terminal); without it, once (for the daemon's log). The report changes kind (nothing arrived → bytes but
    no block) at most once, since it counts bytes since the last valid block.
    """

    def __init__(self, timeout: float, now: float, repeat_every: float | None = None) -> None:
        self.timeout, self.repeat_every = timeout, repeat_every
        self._since = now
        self._bytes = 0
        self._reported_at: float | None = None
        self._reported_bytes = False

    def observe(self, now: float, bytes_received: int, valid_frames: int) -> Report | None:
        """What one read brought (`bytes_received`; `valid_frames`, blocks and HEX messages) at `now`; a report
        when one is due."""
        if valid_frames:
            was_reported = self._reported_at is not None
            self._since, self._bytes, self._reported_at = now, 0, None
            return ReceivingAgain() if was_reported else None
        self._bytes += bytes_received
        silent_for = now - self._since
        if silent_for < self.timeout:
            return None
        kind_changed = self._reported_bytes != (self._bytes > 0)
        repeat_due = self.repeat_every is not None and self._reported_at is not None and (
            now - self._reported_at >= self.repeat_every)
        if self._reported_at is None or kind_changed or repeat_due:
            seconds = self.timeout if self._reported_at is None else round(silent_for)
            self._reported_at, self._reported_bytes = now, self._bytes > 0
            return NoValidBlock(seconds, self._bytes)
        return None
