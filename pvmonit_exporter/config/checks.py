"""Error reporting for the configuration: ConfigError (one line naming the file and the key path), a reader that
remembers the key path of the mapping it reads, and the checks that turn YAML values into typed ones."""

import math
import re
from collections.abc import Callable, Collection
from typing import TypeVar

from pvmonit_exporter.config.schema import BOUNDS
from pvmonit_exporter.errors import UserError
from pvmonit_exporter.vedirect.fields import FIELDS, Kind

# What emoncms keeps in a node or input name besides letters and digits (emoncms-api.md, "Names and values").
EMONCMS_NAME_PUNCTUATION = "_- ."
NODE_NAME_MAX = 64
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# emoncms makes its keys with bin2hex(16 random bytes) and refuses any other before looking one up
# (Modules/user/user_model.php, User::apikey_session: ctype_xdigit, then strlen 32).
EMONCMS_KEY_RE = re.compile(r"[0-9A-Fa-f]{32}")
# 1e3, 2E-5: numbers to YAML 1.2 and to people, text to PyYAML's YAML 1.1 (it wants 1.0e+3).
_YAML_1_2_FLOAT = re.compile(r"[-+]?[0-9]+[eE][-+]?[0-9]+")


class ConfigError(UserError):
    """A configuration problem; `str()` is the one line to print: `FILE:LINE: KEY.PATH: MESSAGE`, without
    `LINE` when the problem has no place in the file (it cannot be read, it is empty) and without `KEY.PATH`
    when it is about the file as a whole. `place` is the key path whose line locates the problem (the unknown
    key itself, where `key_path` names its mapping); the loader fills in `line` (`located`)."""

    def __init__(self, file: str, key_path: str, message: str, *, line: int | None = None,
                 place: str | None = None) -> None:
        self.file, self.key_path, self.message, self.line = file, key_path, message, line
        self.place = key_path if place is None else place
        where = file if line is None else f"{file}:{line}"
        super().__init__(f"{where}: {key_path}: {message}" if key_path else f"{where}: {message}")

    def located(self, line: int | None) -> "ConfigError":
        """The same error on `line` of the file (kept as it is when it already names one)."""
        if self.line is not None or line is None:
            return self
        return ConfigError(self.file, self.key_path, self.message, line=line, place=self.place)


T = TypeVar("T")


class Reader:
    """Typed access to one YAML mapping, remembering the key path for error messages."""

    def __init__(self, file: str, data: object, path: str) -> None:
        self.file, self.path = file, path
        if not isinstance(data, dict):
            raise ConfigError(file, path, f"must be a mapping, got {type_name(data)}")
        self.data: dict[str, object] = data
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, message: str) -> ConfigError:
        return ConfigError(self.file, self.key(name), message)

    def get(self, name: str, check: Callable[[object, str], T], default: T) -> T:
        self.used.add(name)
        if name not in self.data or self.data[name] is None:
            return default
        return check(self.data[name], self.key(name))

    def require(self, name: str, check: Callable[[object, str], T]) -> T:
        self.used.add(name)
        if name not in self.data or self.data[name] is None:
            raise self.error(name, "missing required key")
        return check(self.data[name], self.key(name))

    def finish(self) -> None:
        """Refuse a key nothing read (the first in the file's order)."""
        unknown = [key for key in self.data if key not in self.used]
        if unknown:
            raise ConfigError(self.file, self.path, unknown_key(unknown[0], self.used), place=self.key(unknown[0]))


def did_you_mean(word: str, choices: Collection[str]) -> str | None:
    """The choice `word` was probably meant to be: the same but for case, else a close spelling; None if none."""
    by_lower = {choice.lower(): choice for choice in choices}
    if word.lower() in by_lower:
        return by_lower[word.lower()]
    # Only a configuration with a mistake gets here: a valid one never loads difflib (~200 kB resident).
    import difflib  # noqa: PLC0415

    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1)
    return by_lower[close[0]] if close else None


def unknown_key(key: object, allowed: Collection[str]) -> str:
    """`unknown key 'prot' (did you mean 'port'?)`, or the allowed keys when none is close."""
    guess = did_you_mean(key, allowed) if isinstance(key, str) else None
    hint = f"did you mean {guess!r}?" if guess else f"allowed here: {', '.join(sorted(allowed))}"
    return f"unknown key {str(key)!r} ({hint})"


def type_name(value: object) -> str:
    for kind, name in ((dict, "a mapping"), (list, "a list"), (str, "a string"), (bool, "a boolean")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


class Checks:
    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, path: str, message: str, place: str | None = None) -> ConfigError:
        return ConfigError(self.file, path, message, place=place)

    def text(self, value: object, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(path, f"must be a non-empty string, got {type_name(value)}")
        return value.strip()

    def boolean(self, value: object, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, f"must be true or false, got {type_name(value)}")
        return value

    def name(self, value: object, path: str) -> str:
        text = self.text(value, path)
        if not NAME_RE.match(text):
            raise self.fail(path, f"{text!r} must be 1-64 letters, digits, '_', '-' or '.'")
        return text

    def node(self, value: object, path: str) -> str:
        """An emoncms node name, kept exactly: a number (`1`) or text with spaces (`712 Smart`) are fine."""
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(path, f"must be a non-empty string or a whole number, got {type_name(value)}")
        problem = node_name_problem(value)
        if problem:
            raise self.fail(path, problem)
        return value

    def number(self, value: object, path: str) -> float:
        if isinstance(value, str) and _YAML_1_2_FLOAT.fullmatch(value):
            raise self.fail(path, f"must be a number, got the text {value!r}: YAML reads an exponent without a "
                                  f"dot as text; write {float(value):.1e}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(path, f"must be a number, got {type_name(value)}")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise self.fail(path, f"must be a number (finite), got {value!r:.40}")
        return number

    def measure(self, place: str) -> Callable[[object, str], float]:
        """A number within `BOUNDS[place]`."""
        bounds = BOUNDS[place]

        def check(value: object, path: str) -> float:
            number = self.number(value, path)
            if not bounds.low <= number <= bounds.high:
                raise self.fail(path, f"must be from {bounds.describe()}, got {number:g}")
            return number

        return check

    def whole(self, place: str) -> Callable[[object, str], int]:
        """A whole number within `BOUNDS[place]`."""
        bounds = BOUNDS[place]

        def check(value: object, path: str) -> int:
            if isinstance(value, bool) or not isinstance(value, int) or not bounds.low <= value <= bounds.high:
                raise self.fail(path, f"must be a whole number from {bounds.describe()}, got {value!r:.40}")
            return value

        return check

    def labels(self, value: object, path: str) -> tuple[str, ...]:
        """A list of VE.Direct labels emoncms can store: known labels (case matters), no text fields."""
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(path, "must be a list of VE.Direct labels (strings)")
        for index, label in enumerate(value):
            spec = FIELDS.get(label)
            if spec is None:
                guess = did_you_mean(label, FIELDS)
                hint = f" (did you mean {guess!r}?)" if guess else " (the labels `pvmonit-exporter read` prints)"
                raise self.fail(f"{path}[{index}]", f"unknown label {label!r}{hint}")
            if spec.kind is Kind.TEXT:
                raise self.fail(f"{path}[{index}]", f"{label!r} is text: emoncms stores only numbers, so it "
                                                    "would never be sent")
        return tuple(value)

    def patterns(self, value: object, path: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.startswith("/") for v in value):
            raise self.fail(path, "must be a non-empty list of absolute glob patterns such as /dev/ttyUSB*")
        return tuple(value)

    def argv(self, value: object, path: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise self.fail(path, "must be a non-empty list of strings (argv; no shell is used)")
        return tuple(value)

    def choice(self, options: tuple[str, ...]) -> Callable[[object, str], str]:
        def check(value: object, path: str) -> str:
            if value not in options:
                raise self.fail(path, f"must be one of {', '.join(options)}, got {value!r}")
            return str(value)

        return check

    def listen_address(self, value: object, path: str) -> str:
        text = self.text(value, path)
        parse_listen_address(text, lambda message: self.fail(path, message))
        return text


def emoncms_key_problem(key: str) -> str | None:
    """Why emoncms would refuse `key` (never quoted: it may be most of a real key), or None."""
    if EMONCMS_KEY_RE.fullmatch(key):
        return None
    if set(key.upper()) == {"X"}:
        return (f"the key is PvMonit's placeholder XXXX… ({len(key)} X): put the write key of your emoncms account "
                "there (32 hexadecimal digits; emoncms: My Account, Write API Key)")
    if any(char.isspace() or not char.isprintable() for char in key):
        found = "spaces, line breaks or control characters"
    elif len(key) != 32:
        found = f"{len(key)} characters"
    else:
        found = "characters that are not hexadecimal digits"
    return f"the key must be 32 hexadecimal digits (emoncms refuses any other); found {found}"


def node_name_problem(name: str) -> str | None:
    """Why emoncms would not keep `name` as typed (it silently drops other characters), or None."""
    dropped = sorted({c for c in name if not (c.isalnum() or c in EMONCMS_NAME_PUNCTUATION)})
    if dropped:
        shown = " ".join(repr(c) for c in dropped)
        return f"{name!r}: emoncms would drop {shown} (it keeps letters, digits, spaces, '_', '-' and '.')"
    if name != name.strip(" "):
        return f"{name!r} must not start or end with a space"
    if len(name) > NODE_NAME_MAX:
        return f"{name!r} is longer than {NODE_NAME_MAX} characters"
    return None


def parse_listen_address(text: str, error: Callable[[str], Exception]) -> tuple[str, int]:
    """`HOST:PORT`, `:PORT` (all interfaces) or `[::1]:PORT` → (host, port)."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not (port_text.isascii() and port_text.isdigit()) or not 0 <= int(port_text) <= 65535:
        raise error(f"{text!r} is not HOST:PORT")
    # All interfaces: "::" is a dual-stack socket (IPv6 and IPv4), see web.server.bind_address.
    return host.strip("[]") or "::", int(port_text)
