"""Text made safe to show (logs, /api/state, `check-config`): URL passwords masked, control characters escaped."""

import re

MASK = "****"

# `scheme://user:password@host`: the password is whatever lies between the first `:` and the `@`.
_URL_CREDENTIALS_RE = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/?#@\s:]*):[^/?#\s]*@")


def mask_url_credentials(text: str) -> str:
    """`text` with the password of every URL in it masked: `http://user:pw@host/` → `http://user:****@host/`."""
    return _URL_CREDENTIALS_RE.sub(lambda match: f"{match['scheme']}{match['user']}:{MASK}@", text)


def escape_control(text: str) -> str:
    """`text` with control and other unprintable characters written as Python escapes (`\\x1b`, `\\n`), so that
    a program's output can neither forge log lines nor drive a terminal."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in text)
