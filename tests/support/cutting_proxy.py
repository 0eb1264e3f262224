"""A TCP relay that can cut the network for a while: a pulled uplink between agent and server.

`cut()` drops every open connection and, until `restore()`, either resets each new one
(`mode="reset"`: a router that answers, the link behind it down) or accepts it and
swallows everything (`mode="blackhole"`: packets vanish, only timeouts notice).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from typing import Literal

from tests.support import free_port

_CHUNK = 65536
Mode = Literal["reset", "blackhole"]


def _reset(sock: socket.socket) -> None:
    """Drop the connection now: both peers see it end, with an RST at the close.

    shutdown() first, because close() of a socket that another thread is blocked on
    in recv() is deferred by Linux until that recv returns, which may be never.
    """
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


class _Link:
    """One relayed connection: both sockets and whether it still relays."""

    def __init__(self, client: socket.socket, upstream: socket.socket | None) -> None:
        self.sockets = [client] if upstream is None else [client, upstream]
        self.silent = threading.Event()

    def reset(self) -> None:
        for sock in self.sockets:
            _reset(sock)


class CuttingProxy:
    def __init__(self, target_port: int) -> None:
        self._target = ("127.0.0.1", target_port)
        self.port = free_port()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._cut: Mode | None = None
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self.connections = 0
        self.refused = 0
        threading.Thread(target=self._accept, name="cutting-proxy", daemon=True).start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self, mode: Mode = "reset") -> None:
        """The network is down from now: open connections die (reset) or go silent
        (blackhole), new ones get nowhere."""
        with self._lock:
            self._cut = mode
            links = list(self._links)
            if mode == "reset":
                self._links = []
        for link in links:
            if mode == "reset":
                link.reset()
            else:
                link.silent.set()

    def restore(self) -> None:
        """New connections are relayed again; the silenced ones are reset, as a NAT
        that lost their mapping would."""
        with self._lock:
            self._cut = None
            silent = [link for link in self._links if link.silent.is_set()]
            self._links = [link for link in self._links if not link.silent.is_set()]
        for link in silent:
            link.reset()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        self.cut("reset")

    def __enter__(self) -> CuttingProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                mode = self._cut
                if mode == "blackhole":
                    link = _Link(client, None)
                    link.silent.set()
                    self._links.append(link)
            if mode is not None:
                self.refused += 1
                if mode == "reset":
                    _reset(client)
                continue
            try:
                upstream = socket.create_connection(self._target)
            except OSError:
                _reset(client)
                continue
            link = _Link(client, upstream)
            with self._lock:
                self._links.append(link)
                self.connections += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst, link), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, link: _Link) -> None:
        while True:
            try:
                data = src.recv(_CHUNK)
                if not data:
                    if not link.silent.is_set():
                        dst.shutdown(socket.SHUT_WR)
                    return
                if link.silent.is_set():
                    continue  # swallowed
                dst.sendall(data)
            except OSError:
                return
