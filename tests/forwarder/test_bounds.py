"""The forwarder at the largest values the configuration's bounds allow still snapshots, sends and stops."""

from collections.abc import Callable

from pvmonit_exporter.config.schema import BOUNDS
from tests.forwarder.conftest import MPPT_BLOCK, Rig
from tests.forwarder.fake_emoncms import FakeEmoncms
from tests.helpers import wait_for


def test_the_forwarder_at_its_largest_settings_sends(make_rig: Callable[..., Rig], fake: FakeEmoncms) -> None:
    """A day between snapshots, a 600 s timeout, 10,000-row batches, a 10-million-row queue: before the bounds,
    a timeout of 1e308 passed validation and killed the sending thread on its first request."""
    rig = make_rig(interval=BOUNDS["emoncms.interval"].high, timeout=BOUNDS["emoncms.timeout"].high,
                   batch_size=int(BOUNDS["emoncms.batch_size"].high),
                   max_queue_rows=int(BOUNDS["emoncms.max_queue_rows"].high))
    rig.forwarder.start()
    tick = rig.tick({"mppt": MPPT_BLOCK}, wait_for)
    wait_for(fake.stored)
    assert {(p.node, p.time) for p in fake.stored()} == {("mppt", int(tick))}
    rig.forwarder.stop()
