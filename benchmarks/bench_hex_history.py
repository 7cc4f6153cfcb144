"""Time to read a charger's 31 history days (the totals record, then 31 day records) over a pseudo-terminal
paced at 19,200 baud, as `pvmonit-exporter hex PORT history` does.

Run by hand: `.venv/bin/python -m benchmarks.bench_hex_history`. Prints figures; asserts nothing about speed.

A pseudo-terminal moves bytes at memory speed, so the simulated MPPT here writes at 19,200 baud (1,920 bytes a
second: 10 bits a byte on the wire) and keeps sending its text blocks once a second until a request arrives,
then pauses them (2 s), as real chargers do. The floor is the time the requests and replies take on the wire.
No Python package on PyPI reads VE.Direct HEX history to compare with (vedirect-m8, vedirect, vedirect-jmfife
are text-only); go-victron retries a get up to 8 times with a fixed wait, which cannot be run here.
"""

import os
import statistics
import threading
import time
import tty

from pvmonit_exporter.demo.devices import BlueSolarMppt, model_for
from pvmonit_exporter.sources.hexlink import HexLink
from pvmonit_exporter.sources.serialport import open_port
from pvmonit_exporter.vedirect import hex as vehex
from pvmonit_exporter.vedirect.hex_session import get
from pvmonit_exporter.vedirect.registers import HISTORY_TOTAL, history_day_register

BYTES_PER_SECOND = 19_200 / 10
TEXT_PAUSE = 2.0
RUNS = 5


class PacedMppt:
    """The simulated MPPT on a PTY, writing at 19,200 baud."""

    def __init__(self) -> None:
        self.device = BlueSolarMppt("mppt", "HQ1328Y6TF6", 600.0)
        self.model = model_for([self.device])
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._quiet_until = 0.0
        self._threads = [threading.Thread(target=self._text, daemon=True),
                         threading.Thread(target=self._answers, daemon=True)]
        for thread in self._threads:
            thread.start()

    def _write(self, data: bytes) -> None:
        with self._lock:  # one writer at a time on the wire, each byte taking its time
            for start in range(0, len(data), 16):
                os.write(self.master, data[start : start + 16])
                time.sleep(len(data[start : start + 16]) / BYTES_PER_SECOND)

    def _text(self) -> None:
        while not self._stop.wait(1.0):
            if time.monotonic() >= self._quiet_until:
                self._write(self.device.frame(self.model))

    def _answers(self) -> None:
        pending = b""
        while not self._stop.is_set():
            try:
                pending += os.read(self.master, 4096)
            except OSError:
                return
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                reply = self.device.answer(line[line.rfind(b":") + 1 :], self.model)
                if reply is not None:
                    self._quiet_until = time.monotonic() + TEXT_PAUSE
                    self._write(reply)

    def close(self) -> None:
        self._stop.set()
        os.close(self.slave)
        os.close(self.master)


def wire_floor(device: BlueSolarMppt) -> float:
    """Seconds the device's 32 replies take at 19,200 baud, back to back (the host's requests are not paced
    by a PTY; on a real cable they add 32 × 11 bytes, 0.18 s)."""
    model = model_for([device])
    requests = [get(HISTORY_TOTAL), *(get(history_day_register(d)) for d in range(31))]
    total = 0
    for request in requests:
        sent = request.encode()
        total += len(device.answer(sent[1:-1], model) or b"")
    return total / BYTES_PER_SECOND


def main() -> None:
    mppt = PacedMppt()
    try:
        times = []
        for _ in range(RUNS):
            time.sleep(TEXT_PAUSE + 1.5)  # the text flowing again, as between two reads
            with open_port(mppt.path) as port:
                link = HexLink(port)
                start = time.perf_counter()
                _, total, days = link.history()
                times.append(time.perf_counter() - start)
            if total is None or len(days) != 31:
                raise SystemExit(f"the history read failed: {len(days)} days")
            assert link.session.stale_replies == 0
        print(f"31 history days + totals over a PTY paced at 19,200 baud, {RUNS} runs:")
        print(f"  ours (HexLink, one request in flight): median {statistics.median(times):.2f} s, "
              f"best {min(times):.2f} s")
        print(f"  floor (the 32 replies on the wire, back to back): {wire_floor(mppt.device):.2f} s")
        print("  peer: none — no PyPI package reads VE.Direct HEX history (vedirect-m8 is text-only)")
        print(f"  HEX frame of a day record: {len(vehex.encode_register(vehex.Response.GET, 0x1050, 0, bytes(34)))}"
              " bytes on the wire")
    finally:
        mppt.close()


if __name__ == "__main__":
    main()
