"""A real RFC 3161 time-stamping authority for tests: OpenSSL's `ts -reply` with its own CA
and TSA certificate (made here with `openssl req`/`x509`), answering RFC 3161's HTTP
transport (POST application/timestamp-query -> application/timestamp-reply) from a small
HTTP server on a free loopback port."""

from __future__ import annotations

import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_TS_CONFIG = """\
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {dir}
serial = $dir/tsaserial
crypto_device = builtin
signer_cert = $dir/tsa.crt
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""
_TSA_EXTENSIONS = """\
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = critical, timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_tsa_files(folder: Path, name: str = "Test TSA") -> Path:
    """A CA (ca.crt, ca.key) and a TSA certificate it issued (tsa.crt, tsa.key) with the
    critical timeStamping EKU, plus the `openssl ts` config; returns the config's path."""
    folder.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "ca.key", "-out", "ca.crt", "-days", "3650", "-subj", f"/CN={name} Root",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "tsa.key", "-out", "tsa.csr", "-subj", f"/CN={name}",
        cwd=folder,
    )  # fmt: skip
    (folder / "tsa.ext").write_text(_TSA_EXTENSIONS)
    _openssl(
        "x509", "-req", "-in", "tsa.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "tsa.crt", "-days", "3650", "-extfile", "tsa.ext",
        cwd=folder,
    )  # fmt: skip
    (folder / "tsaserial").write_text("01\n")
    config = folder / "ts.cnf"
    config.write_text(_TS_CONFIG.format(dir=folder))
    return config


@dataclass
class Tsa:
    """A running TSA: its URL, its root certificate, and how many stamps it gave."""

    url: str
    root: Path  # ca.crt: what a verifier trusts
    folder: Path
    stamps: int = 0
    # When set, the server answers this instead (a broken or hostile TSA).
    answer: bytes | None = None


@contextmanager
def running_tsa(folder: Path | None = None, name: str = "Test TSA") -> Iterator[Tsa]:
    """Start a TSA on a free loopback port; stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="tsa-") as temporary:
        where = folder or Path(temporary)
        config = make_tsa_files(where, name)
        lock = threading.Lock()
        tsa = Tsa("", where / "ca.crt", where)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Type") != "application/timestamp-query":
                    self.send_error(415, "not a timestamp query")
                    return
                with lock:
                    query, reply = where / "query.tsq", where / "reply.tsr"
                    query.write_bytes(body)
                    done = subprocess.run(
                        ["openssl", "ts", "-reply", "-config", str(config),
                         "-queryfile", str(query), "-out", str(reply)],
                        capture_output=True,
                    )  # fmt: skip
                    if done.returncode != 0:
                        self.send_error(400, "openssl ts refused the query")
                        return
                    answer = tsa.answer if tsa.answer is not None else reply.read_bytes()
                    tsa.stamps += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        tsa.url = f"http://127.0.0.1:{server.server_address[1]}/tsa"
        thread = threading.Thread(target=server.serve_forever, name="test-tsa", daemon=True)
        thread.start()
        try:
            yield tsa
        finally:
            server.shutdown()
            server.server_close()
            thread.join()
