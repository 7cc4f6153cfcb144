"""What one delivery to emoncms came to: the client's answer, read by the policy and by `check-config`.

Kept apart from the HTTP client so that reading these (the metrics catalogue, the policy) does not import
requests: a daemon without an emoncms section never loads it.
"""

from dataclasses import dataclass
from typing import Literal

NODE_LIMIT_MESSAGE = "Reached the maximal allowed number of different NodeIds"


@dataclass(frozen=True)
class Ok:
    """emoncms answered `ok`: the rows are stored."""

    message: str = "ok"  # every outcome has one, so that callers need not tell them apart to log them


@dataclass(frozen=True)
class AuthError:
    """The key is wrong (401), missing or read-only (empty 200)."""

    message: str


@dataclass(frozen=True)
class ContentError:
    """emoncms refused the request's content with `{"success": false}`; `message` is the server's."""

    message: str

    @property
    def node_limit(self) -> bool:
        """The account already has its maximum of nodes: rows for a new node fail, existing nodes still work."""
        return NODE_LIMIT_MESSAGE in self.message


@dataclass(frozen=True)
class TransientError:
    """Worth retrying later unchanged: `kind` is connection, timeout or http."""

    kind: Literal["connection", "timeout", "http"]
    message: str


Outcome = Ok | AuthError | ContentError | TransientError
