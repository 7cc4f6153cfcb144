"""Simulated Victron devices that write genuine VE.Direct text frames into real pseudo-terminals.

Why: the `demo` and `simulate` commands, the tests and the benchmarks need devices that behave like real ones
(checksummed blocks once a second, the BMV's two blocks, asynchronous HEX messages between an MPPT's blocks, a
port that disappears and comes back) on a machine without hardware. The exporter reads them through the same
code path (pyserial on a tty) as a real USB cable.

Three layers, the first two pure (no I/O, no clock, no threads) so that a seed gives the same bytes every time:
- `day`: `SystemModel`, the physics of one small off-grid 24 V installation on an accelerated day.
- `devices`: `Bmv702`, `BlueSolarMppt`, `PhoenixInverter`, the exact blocks each product sends and its HEX
  answers; `iter_frames` / `frames_for` give their bytes without any PTY (benchmarks).
- `ports`: `SimulatedPort` and `Simulator`, the pseudo-terminals, a writer thread, the probes' file and clamp.
`ble` is the SmartShunt heard over a simulated Bluetooth radio.
"""
