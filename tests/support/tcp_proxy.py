"""A TCP relay between the agent and the broker that can silently swallow all traffic,
the way a dead NAT mapping or a cut uplink does: a half-open connection."""

from __future__ import annotations

import socket
import threading

from tests.support import free_port

_CHUNK = 65536


class SilentProxy:
    def __init__(self, target_port: int) -> None:
        self._target = ("127.0.0.1", target_port)
        self.port = free_port()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._swallowing = threading.Event()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.connections = 0
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def go_silent(self) -> None:
        """From now on every byte either way is dropped; sockets stay open."""
        self._swallowing.set()

    def speak_again(self) -> None:
        """New connections are relayed again; the silenced ones stay dead, as they would."""
        self._swallowing.clear()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                sock.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            silenced = threading.Event()
            if self._swallowing.is_set():
                silenced.set()
            try:
                upstream = socket.create_connection(self._target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
                self.connections += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst, silenced), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, silenced: threading.Event) -> None:
        while True:
            try:
                data = src.recv(_CHUNK)
            except OSError:
                return
            if not data:
                return
            if self._swallowing.is_set():
                silenced.set()  # once silent, this connection never speaks again
            if silenced.is_set():
                continue
            try:
                dst.sendall(data)
            except OSError:
                return
