"""What `check-config --emoncms` and `--mqtt` find: one line each, written the same way for both."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO


@dataclass(frozen=True)
class Finding:
    """One line of a check's report; `ok` False makes check-config exit 2."""

    ok: bool
    text: str


def report(part: str, findings: Sequence[Finding], out: IO[str], err: IO[str]) -> bool:
    """Each finding on `out` as a comment, or on `err` as an error; True when every one is ok."""
    for finding in findings:
        if finding.ok:
            out.write(f"# {part}: {finding.text}\n")
        else:
            err.write(f"pvmonit-exporter: {part}: {finding.text}\n")
    return all(finding.ok for finding in findings)
