"""pvmonit-exporter: Victron VE.Direct → Prometheus, with a durable emoncms forwarder."""

__version__ = "0.1.0"

# A system clock earlier than this year cannot be right: the release was built later (no RTC on a Pi).
BUILD_YEAR = 2026
