"""A minimal Redis client (RESP2 over one TCP socket), written for measuring.

Why not the ``redis`` package: calibration times single round trips, so the client should
add as little and as predictable work as possible per command (no connection pool, no
response callbacks, no optional hiredis parser changing the numbers between machines);
commands are encoded once, before the timed loop, and sent with one ``sendall``. It also
keeps kvsim free of a runtime dependency for a handful of commands.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Sequence
from typing import TypeAlias

from kvsim.errors import UserError

Arg: TypeAlias = bytes | str | int | float
Reply: TypeAlias = bytes | str | int | None | list["Reply"]


class RespError(UserError):
    """An error reply from the server (``-ERR ...``) or a broken reply stream."""


def encode(*args: Arg) -> bytes:
    """One command as a RESP array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(parts)


class RespClient:
    def __init__(self, host: str = "127.0.0.1", port: int = 6379, timeout: float = 10.0) -> None:
        self.host, self.port = host, port
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._r = self.sock.makefile("rb")

    def __enter__(self) -> RespClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._r.close()
        finally:
            self.sock.close()

    def send(self, payload: bytes) -> None:
        self.sock.sendall(payload)

    def read(self) -> Reply:
        """One reply; an error reply is returned as a RespError instance inside arrays,
        raised at the top level."""
        reply = self._read()
        if isinstance(reply, RespError):
            raise reply
        return reply

    def _read(self) -> Reply | RespError:
        """One reply. Anything that is not RESP (another kind of server, a broken stream)
        is a RespError naming what came back, never an assertion or a ValueError."""
        line = self._r.readline(1 << 20)
        if not line.endswith(b"\r\n"):
            if not line:
                raise RespError(f"{self.host}:{self.port} closed the connection mid-reply")
            raise RespError(f"{self.host}:{self.port} sent {line[:40]!r}: not a Redis reply (is this a Redis server?)")
        kind, body = line[:1], line[1:-2]
        try:
            if kind == b"+":
                return body.decode()
            if kind == b"-":
                return RespError(body.decode(errors="replace"))
            if kind == b":":
                return int(body)
            if kind == b"$":
                n = int(body)
                if n < 0:
                    return None
                data = self._r.read(n + 2)
                if len(data) != n + 2:
                    raise RespError(f"{self.host}:{self.port} closed the connection mid-reply")
                return data[:-2]
            if kind == b"*":
                n = int(body)
                if n < 0:
                    return None
                items: list[Reply] = []
                for _ in range(n):
                    item = self._read()
                    items.append(item if not isinstance(item, RespError) else str(item))
                return items
        except (ValueError, UnicodeDecodeError):
            pass
        raise RespError(f"{self.host}:{self.port} sent {line[:40]!r}: not a Redis reply (is this a Redis server?)")

    def call(self, *args: Arg) -> Reply:
        self.send(encode(*args))
        return self.read()

    def pipeline(self, commands: Iterable[Sequence[Arg]]) -> list[Reply]:
        """Send all commands, then read all replies (the first error reply is raised)."""
        payload = [encode(*c) for c in commands]
        self.send(b"".join(payload))
        replies = [self._read() for _ in payload]  # read every reply before raising
        for r in replies:
            if isinstance(r, RespError):
                raise r
        return [r for r in replies if not isinstance(r, RespError)]
