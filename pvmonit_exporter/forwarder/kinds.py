"""The label values of the forwarder's counters. Every one is exported from the start, at 0.

Kept apart from the policy and the figures so that the metrics catalogue can name them without importing
either: a daemon without emoncms loads nothing else of the forwarder.
"""

from typing import Literal, get_args

# `pvmonit_emoncms_errors_total{kind}`
ErrorKind = Literal["connection", "timeout", "http", "auth", "content", "disk"]
ERROR_KINDS: tuple[ErrorKind, ...] = get_args(ErrorKind)
# `pvmonit_emoncms_rows_dropped_total{reason}`
DropReason = Literal["queue_full", "disk_error", "dead_letter_full"]
DROP_REASONS: tuple[DropReason, ...] = get_args(DropReason)
# `pvmonit_emoncms_snapshots_skipped_total{reason}`
SkipReason = Literal["clock"]
SKIP_REASONS: tuple[SkipReason, ...] = get_args(SkipReason)
