"""The way to a solar charger's load output through its reader's HEX session: control asks (a set of 0xEDAB, a get
of 0xEDA8), the serial reader carries the requests in its own conversation — one session per device, reads and
writes alike — and hands back what the device answered. Thread-safe: the control thread and the reader meet here.
"""

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from pvmonit_exporter.vedirect import hex as vehex
from pvmonit_exporter.vedirect.hex_session import Kind, Outcome, Request, Result, get, set_
from pvmonit_exporter.vedirect.registers import CAPABILITY_LOAD, LOAD_OUTPUT_CONTROL, LOAD_OUTPUT_STATE


@dataclass(frozen=True)
class SetResult:
    ok: bool
    error: str | None  # the device's refusal or `timeout`


class LoadLink:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._asked: list[Request] = []
        self.load_output: bool | None = None  # 0x0140 bit 0, once the device answered
        self._state: int | None = None
        self._state_serial = 0  # counts 0xEDA8 answers
        self._set_serial = 0  # counts 0xEDAB answers
        self._last_set: SetResult | None = None
        self._reads_pending = 0

    # --- control's side --------------------------------------------------------------------------------

    def write_mode(self, mode: int, timeout: float) -> SetResult:
        """Set 0xEDAB to `mode` and wait for the device's answer (at most `timeout` s); a read-back follows."""
        with self._changed:
            serial = self._set_serial
            self._asked += [set_(LOAD_OUTPUT_CONTROL, bytes([mode])), get(LOAD_OUTPUT_STATE)]
            self._reads_pending += 1
            if not self._changed.wait_for(lambda: self._set_serial != serial, timeout):
                return SetResult(ok=False, error=f"no answer within {timeout:g} s")
            assert self._last_set is not None  # noqa: S101 - set with the serial
            return self._last_set

    def ask_state(self) -> None:
        """Ask for 0xEDA8 again (unless a read is already on its way)."""
        with self._changed:
            if self._reads_pending == 0:
                self._asked.append(get(LOAD_OUTPUT_STATE))
                self._reads_pending += 1

    def state_since(self, serial: int) -> tuple[int | None, int]:
        """The load output's state (0 off, 1 on…) when an answer came after answer number `serial`, else None;
        and the number of the latest answer."""
        with self._changed:
            fresh = self._state if self._state_serial != serial else None
            return fresh, self._state_serial

    # --- the reader's side -----------------------------------------------------------------------------

    def take(self) -> list[Request]:
        with self._changed:
            asked, self._asked = self._asked, []
            return asked

    def record(self, outcomes: Sequence[Outcome], capabilities: int | None) -> None:
        with self._changed:
            if capabilities is not None:
                self.load_output = bool(capabilities & CAPABILITY_LOAD)
            for outcome in outcomes:
                request, reply = outcome.request, outcome.reply
                if request.register == LOAD_OUTPUT_STATE and request.kind is Kind.GET:
                    self._reads_pending = max(0, self._reads_pending - 1)
                    if outcome.result is Result.OK and isinstance(reply, vehex.RegisterReply) and reply.data:
                        self._state, self._state_serial = reply.data[0], self._state_serial + 1
                elif request.register == LOAD_OUTPUT_CONTROL and request.kind is Kind.SET:
                    self._last_set = SetResult(outcome.result is Result.OK, outcome.error)
                    self._set_serial += 1
            self._changed.notify_all()

    def disconnected(self) -> None:
        """The port closed: whatever was asked and not answered will not be."""
        with self._changed:
            self._reads_pending = 0
