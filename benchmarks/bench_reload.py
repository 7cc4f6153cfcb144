"""600 reloads (SIGHUP) of a real daemon: descriptors, threads and RSS after 10 and after 600.

Run by hand: `.venv/bin/python -m benchmarks.bench_reload [--reloads 600] [--code DIR]`. Prints figures; asserts
nothing.

The daemon (tests/daemon/reload_rig.py) reads the simulator's four devices, a file probe and a serial clamp, and
forwards to the stand-in emoncms through its disk queue; each SIGHUP goes once the previous reload has logged
`configuration reloaded`. `--code DIR` runs the daemon from another tree (`git archive COMMIT | tar -x -C DIR`)
with this same rig: the peer is main at 40ce9ae, before the fixes. Issue 16's contract: 600 reloads within ± 5
fds and ± 2 MB of 10. tests/daemon/test_reload.py holds 150 reloads to a tighter bound in the test suite.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

from tests.daemon.reload_rig import ReloadRig

CHECKPOINTS = (10, 50, 100, 200, 300, 400, 500, 600)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reloads", type=int, default=600)
    parser.add_argument("--code", type=Path, help="run the daemon from this tree instead (PYTHONPATH)")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.code is not None:
        env["PYTHONPATH"] = str(args.code.resolve())
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    checkpoints = sorted({c for c in CHECKPOINTS if c < args.reloads} | {args.reloads})
    with tempfile.TemporaryDirectory() as work, ReloadRig(Path(work), env) as rig:
        start = time.monotonic()
        print(f"daemon code: {args.code or 'this tree'}")
        print(f"{'reloads':>8} {'fds':>5} {'threads':>8} {'RSS MB':>8} {'seconds':>8}")
        for count in checkpoints:
            rig.reload_until(count)
            print(f"{count:>8} {rig.fds():>5} {rig.threads():>8} {rig.rss_mb():>8.1f} "
                  f"{time.monotonic() - start:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
