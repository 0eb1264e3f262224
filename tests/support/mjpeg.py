"""A real HTTP server sending MJPEG (multipart/x-mixed-replace), as cheap IP cameras do."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

BOUNDARY = "camframe"


class MjpegServer:
    """Serves `fps` noisy JPEG pictures a second at http://127.0.0.1:PORT/video."""

    def __init__(self, width: int = 640, height: int = 480, fps: float = 10.0) -> None:
        self.width, self.height, self.fps = width, height, fps
        stop = self._stop = threading.Event()
        rng = np.random.default_rng(7)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace;boundary={BOUNDARY}")
                self.end_headers()
                index = 0
                try:
                    while not stop.is_set():
                        picture = rng.integers(60, 200, (server.height, server.width), np.uint8)
                        picture[:, (index * 8) % server.width] = 255
                        ok, jpeg = cv2.imencode(".jpg", picture)
                        assert ok
                        data = jpeg.tobytes()
                        self.wfile.write(
                            f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                            f"Content-Length: {len(data)}\r\n\r\n".encode()
                        )
                        self.wfile.write(data + b"\r\n")
                        index += 1
                        time.sleep(1 / server.fps)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/video"

    def start(self) -> MjpegServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
