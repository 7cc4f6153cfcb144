"""block_watch: when a port's data deserves a word, table-tested with a fake clock (the module is pure)."""

import pytest

from pvmonit_exporter.sources.block_watch import BlockWatch, NoValidBlock, ReceivingAgain, Report

# (time, bytes read, valid blocks) steps → the report expected after each one.
Step = tuple[float, int, int, Report | None]

SCENARIOS: dict[str, list[Step]] = {
    "blocks every second: nothing to say": [
        (1.0, 600, 1, None), (2.0, 600, 1, None), (3.0, 600, 1, None), (4.0, 600, 1, None), (5.5, 600, 1, None),
    ],
    "silent from the start: one report at the timeout": [
        (4.9, 0, 0, None), (5.0, 0, 0, NoValidBlock(5, 0)), (6.0, 0, 0, None), (60.0, 0, 0, None),
    ],
    "bytes but no block: counted since the port was opened": [
        (1.0, 100, 0, None), (3.0, 200, 0, None), (5.2, 50, 0, NoValidBlock(5, 350)), (9.0, 10, 0, None),
    ],
    "stops sending: once, then once when it returns": [
        (1.0, 600, 1, None), (5.9, 0, 0, None), (6.0, 0, 0, NoValidBlock(5, 0)), (30.0, 0, 0, None),
        (31.0, 200, 0, NoValidBlock(30, 200)),  # noise on the line is worth saying, once
        (40.0, 300, 0, None),
        (41.0, 600, 1, ReceivingAgain()), (42.0, 600, 1, None),
    ],
    "HEX answers while the text pauses count as much as blocks": [
        (1.0, 600, 1, None), (3.0, 40, 1, None), (6.0, 40, 1, None), (9.0, 40, 1, None), (10.0, 600, 1, None),
    ],
    "a partial block before the silence never makes the return look wrong": [
        (1.0, 600, 1, None), (1.1, 80, 0, None), (6.2, 0, 0, NoValidBlock(5, 80)), (70.0, 520, 1, ReceivingAgain()),
    ],
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_reports_once(name: str) -> None:
    watch = BlockWatch(5.0, now=0.0)
    assert [watch.observe(t, n, b) for t, n, b, _ in SCENARIOS[name]] == [r for *_, r in SCENARIOS[name]]


def test_repeats_at_most_every_interval_for_read() -> None:
    watch = BlockWatch(5.0, now=0.0, repeat_every=30.0)
    reports = [(t, watch.observe(t, 0, 0)) for t in (1.0, 5.0, 6.0, 20.0, 34.9, 35.0, 36.0, 65.0)]
    assert [(t, r) for t, r in reports if r is not None] == [
        (5.0, NoValidBlock(5, 0)), (35.0, NoValidBlock(35, 0)), (65.0, NoValidBlock(65, 0))]


@pytest.mark.parametrize(
    ("report", "text"),
    [
        (NoValidBlock(5, 0),
         "no valid block for 5 s: nothing arrived (check the cable and the port; is the device asleep?)"),
        (NoValidBlock(35, 4800), "no valid block for 35 s: 4800 bytes arrived but no valid VE.Direct block "
                                 "(wrong speed, or not a VE.Direct device?)"),
        (NoValidBlock(1.5, 0), "no valid block for 1.5 s: nothing arrived (check the cable and the port; "
                               "is the device asleep?)"),
        (ReceivingAgain(), "receiving again"),
    ],
)
def test_words(report: Report, text: str) -> None:
    assert report.describe() == text
