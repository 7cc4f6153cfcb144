"""Text made safe to show (logs, /api/state, `check-config`): URL credentials masked, control characters escaped.

A URL's credentials are found by parsing it as requests and urllib3 do (RFC 3986: the authority ends at the first
`/`, `?` or `#`; the user information is what comes before its last `@`), never by matching a pattern in text: a
pattern cannot know where a password with a `/`, `#`, `?` or space in it ends."""

from urllib.parse import quote, unquote, urlsplit, urlunsplit

MASK = "****"
# What RFC 3986 lets user information hold unencoded besides letters and digits: the form urllib3 sends.
_USERINFO_SAFE = "-._~!$&'()*+,;=:"


def _split(url: str) -> tuple[str, str, str] | None:
    """(`scheme://`, user information, the rest from the host on) of `url`; ("", "", url) without user
    information; None when where the credentials end cannot be told: an `@` outside the user information (a
    password with an unencoded `/`, `?` or `#` makes the parsers end the host there), or a URL that does not
    parse (`http://[::1`)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    userinfo, at, host = parts.netloc.rpartition("@")
    rest = urlunsplit(("", host, parts.path, parts.query, parts.fragment))
    if "@" in rest:
        return None
    if not at:
        return "", "", url
    head = url[: url.index("//") + 2]
    return head, userinfo, rest.removeprefix("//")


def url_credentials_problem(url: str) -> str | None:
    """Why the credentials of `url` cannot be told apart from its host and path (so it can be neither masked
    nor used as meant), or None."""
    if _split(url) is None:
        try:
            urlsplit(url)
        except ValueError as exc:
            return f"does not parse as a URL ({exc})"
        return ("has an '@' after the host: a user name or password holding '/', '?', '#' or '@' must be "
                "percent-encoded there (%2F, %3F, %23, %40)")
    return None


def mask_url(url: str) -> str:
    """`url` with every credential masked: the password (`http://user:****@host/`), a user name standing alone
    (`http://****@host/`, a token) and the query and fragment (`?****`, they may hold a key). A URL whose
    credentials cannot be told apart (see `url_credentials_problem`) is masked after its `scheme://`."""
    split = _split(url)
    if split is None:
        scheme, sep, _ = url.partition("://")
        return f"{scheme}{sep}{MASK}" if sep and scheme.isalpha() else MASK
    head, userinfo, rest = split
    if userinfo:
        user, colon, _ = userinfo.partition(":")
        rest = f"{head}{user}:{MASK}@{rest}" if colon else f"{head}{MASK}@{rest}"
    parts = urlsplit(rest)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, MASK if parts.query else "",
                       MASK if parts.fragment else ""))


def url_secrets(url: str) -> tuple[str, ...]:
    """The secrets `url` holds, as written, percent-decoded and percent-encoded, longest first: its user
    information, the password (or the user name standing alone), the query and fragment; everything after
    `scheme://` when its credentials cannot be told apart. For scrubbing texts that may quote them (an
    exception's message)."""
    split = _split(url)
    if split is None:
        found = {url.partition("://")[2] or url}
    else:
        _, userinfo, rest = split
        user, colon, password = userinfo.partition(":")
        parts = urlsplit(rest)
        found = {userinfo, password if colon else user, parts.query, parts.fragment}
    found |= {unquote(secret) for secret in found}
    found |= {quote(secret, safe=_USERINFO_SAFE) for secret in found}
    return tuple(sorted(found - {""}, key=len, reverse=True))


def escape_control(text: str) -> str:
    """`text` with control and other unprintable characters written as Python escapes (`\\x1b`, `\\n`), so that
    a program's output can neither forge log lines nor drive a terminal."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in text)
