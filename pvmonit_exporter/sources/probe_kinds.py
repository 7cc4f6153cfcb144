"""The kinds of failed probe readings counted in `pvmonit_probe_errors_total{kind}`: every one is exported
from the start, at 0.

Kept apart from `probes` so that the metrics catalogue can name them without importing the probe readers (and
subprocess): a daemon without probes loads none of them.
"""

from typing import Literal, get_args

ProbeErrorKind = Literal["timeout", "failed", "parse", "out_of_range", "unavailable"]
PROBE_ERROR_KINDS: tuple[ProbeErrorKind, ...] = get_args(ProbeErrorKind)
