"""A forwarder in its own process, for the kill -9 tests: `produce` queues snapshots as fast as it can while its
flush thread sends them; `drain` sends what is queued and exits 0 when the queue is empty.

In `produce`, after each snapshot is durably queued it prints the row keys it was told are on disk, one JSON
line per row `[node, input, time, value]`, and flushes stdout: the parent kills it with SIGKILL at a random
moment and then checks that every printed row reaches the fake emoncms.

The clock is frozen at `--now` (the fake runs on the same frozen clock), so emoncms's sentat correction is
exactly zero and a stored time equals the queued one.

Usage (from the project's root): python -m tests.forwarder.crash_child produce|drain QUEUE_DIR URL NOW FIRST_STEP
"""

import json
import sys
import time
from pathlib import Path

from pvmonit_exporter.config import DeviceConfig, EmoncmsConfig
from pvmonit_exporter.forwarder.threads import Forwarder
from pvmonit_exporter.state import State
from pvmonit_exporter.vedirect.framing import DecoderStats
from tests.forwarder.fake_emoncms import WRITE_KEY

DEVICES = (DeviceConfig("mppt", "/dev/ttyUSB0"),)


def main(argv: list[str]) -> int:
    mode, queue_dir, url, now_text, first_text = argv
    now, first = float(now_text), int(first_text)
    config = EmoncmsConfig(url=url, apikey=WRITE_KEY, queue_dir=Path(queue_dir), interval=1.0, timeout=10.0,
                           batch_size=20)
    state = State(DEVICES, clock=lambda: now)
    forwarder = Forwarder(config, state, DEVICES, (), clock=lambda: now, backoff_initial=0.01,
                          backoff_max=0.05, poll_interval=0.01)
    if mode == "drain":
        emptied = forwarder.flush_all(deadline=time.monotonic() + 60)
        forwarder.stop()
        return 0 if emptied else 1
    forwarder.start()  # its snapshot thread never fires: the frozen clock never reaches the next tick
    base = int(now) - 10_000_000
    for step in range(first, first + 1_000_000):
        state.record_blocks("mppt", [{"PID": "0xA053", "V": str(step), "PPV": "1"}], DecoderStats())
        for row in forwarder.snapshot(base + step):
            for name, value in row.values.items():
                print(json.dumps([row.node, name, row.time, value]), flush=True)
        time.sleep(0.002)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
