"""Real HTTP servers on 127.0.0.1 that misbehave the ways a path to emoncms can: they redirect, answer `ok` for
a host that is not emoncms, drip their answer a byte at a time, or send a huge one.

`ScriptedServer` accepts connections and hands each socket to a script (one thread per connection); `close()`
stops accepting and closes every connection still open.
"""

import socket
import threading
import time
from collections.abc import Callable
from contextlib import suppress

Script = Callable[[socket.socket], None]


def read_request(connection: socket.socket) -> bytes:
    """The request's head and its body (by Content-Length), as the client sent them."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


class ScriptedServer:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._closed:
                    connection.close()
                    return
                self._connections.append(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with suppress(OSError):
            request = read_request(connection)
            with self._lock:
                self.requests.append(request)
            self.script(connection)
        with suppress(OSError):
            connection.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections = list(self._connections)
        self._listener.close()
        for connection in connections:
            with suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()

    def __enter__(self) -> "ScriptedServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def answer(status: str, body: bytes = b"", headers: tuple[str, ...] = ()) -> Script:
    """A complete answer at once, then the connection is closed."""
    head = "".join(f"{header}\r\n" for header in (*headers, f"Content-Length: {len(body)}", "Connection: close"))

    def script(connection: socket.socket) -> None:
        connection.sendall(f"HTTP/1.1 {status}\r\n{head}\r\n".encode() + body)

    return script


def redirect(status: str, location: str) -> Script:
    return answer(status, b"", (f"Location: {location}",))


def drip(part: str, seconds_per_byte: float) -> Script:
    """A 200 `ok` answer sent one byte every `seconds_per_byte`: from its first byte (`part="head"`) or only its
    body, padded to 40 bytes (`part="body"`)."""
    body = b"ok" + b" " * 38

    def script(connection: socket.socket) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        if part == "body":
            connection.sendall(head)
            slow = body
        else:
            slow = head + body
        for byte in slow:
            connection.sendall(bytes([byte]))
            time.sleep(seconds_per_byte)

    return script


class HugeAnswer:
    """A 200 answer of `size` bytes, written as fast as the client reads; `sent` counts the bytes written."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.sent = 0

    def __call__(self, connection: socket.socket) -> None:
        connection.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {self.size}\r\n\r\n"
                           .encode())
        chunk = b"<p>portal</p>" * 5000
        while self.sent < self.size:
            part = chunk[: self.size - self.sent]
            connection.sendall(part)
            self.sent += len(part)
