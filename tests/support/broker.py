"""A real mosquitto broker on a free port, with its own config for auth, ACL and TLS cases."""

from __future__ import annotations

import datetime as dt
import getpass
import ipaddress
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support import free_port, wait_listening, wait_port_closed

MOSQUITTO_CANDIDATES = ("/usr/sbin/mosquitto",)
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


def _find_binary(name: str, candidates: tuple[str, ...] = ()) -> str:
    for candidate in candidates:
        if Path(candidate).is_file():
            return candidate
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"{name} is not installed (apt-get install mosquitto); "
            "tests needing a broker cannot run",
            pytrace=False,
        )
    return found


@dataclass(frozen=True)
class CertPair:
    """A PEM certificate and its unencrypted private key."""

    cert_file: Path
    key_file: Path


class _CertAuthority:
    """A throwaway CA that signs the broker's server cert and client certs."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "camera-agent test CA")])
        now = dt.datetime.now(dt.UTC)
        self._name = name
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._key, hashes.SHA256())
        )
        self.ca_file = directory / "ca.crt"
        self.ca_file.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    def issue(
        self,
        stem: str,
        cn: str,
        *,
        not_before: dt.datetime,
        not_after: dt.datetime,
        server: bool,
    ) -> CertPair:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(self._name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            ).add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
        else:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
            )
        cert = builder.sign(self._key, hashes.SHA256())
        pair = CertPair(self.directory / f"{stem}.crt", self.directory / f"{stem}.key")
        pair.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        pair.key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        pair.key_file.chmod(0o600)
        return pair


class Broker:
    """mosquitto on 127.0.0.1:<free port>; never the machine's own broker on 1883.

    `users` switches anonymous access off and writes a password file; `acl` is the text of
    an ACL file; `tls=True` serves MQTT over TLS with a throwaway CA (`ca_file`), and
    `require_client_cert=True` additionally demands a client cert from that CA, whose CN
    becomes the MQTT username.
    """

    def __init__(
        self,
        *,
        users: dict[str, str] | None = None,
        acl: str | None = None,
        tls: bool = False,
        require_client_cert: bool = False,
        directory: Path | None = None,
        persistence: bool = False,
    ) -> None:
        if require_client_cert and not tls:
            raise ValueError("require_client_cert needs tls=True")
        self._binary = _find_binary("mosquitto", MOSQUITTO_CANDIDATES)
        if directory is None:
            self._tmp: tempfile.TemporaryDirectory[str] | None = tempfile.TemporaryDirectory(
                prefix="mosquitto-"
            )
            directory = Path(self._tmp.name)
        else:
            self._tmp = None
            directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.users = dict(users or {})
        self.tls = tls
        self._port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self.log_file = directory / "mosquitto.log"
        self.config_file = directory / "mosquitto.conf"
        self._ca: _CertAuthority | None = None
        self._server_cert: CertPair | None = None

        lines = [
            f"listener {self._port} 127.0.0.1",
            # With persistence, sessions and their queued messages outlive a restart (saved
            # at a clean stop, and every second, so most of them outlive a SIGKILL too).
            *(
                ["persistence true", f"persistence_location {directory}/", "autosave_interval 1"]
                if persistence
                else ["persistence false"]
            ),
            f"log_dest file {self.log_file}",
            "log_type all",
            "connection_messages true",
            # Run as whoever runs the tests, so mosquitto can read files in our temp dir.
            f"user {getpass.getuser()}",
        ]
        if self.users:
            password_file = directory / "passwords"
            self._write_password_file(password_file)
            lines += ["allow_anonymous false", f"password_file {password_file}"]
        else:
            lines.append("allow_anonymous true")
        if acl is not None:
            acl_file = directory / "acl"
            acl_file.write_text(acl)
            lines.append(f"acl_file {acl_file}")
        if tls:
            self._ca = _CertAuthority(directory)
            now = dt.datetime.now(dt.UTC)
            self._server_cert = self._ca.issue(
                "server",
                "localhost",
                not_before=now - dt.timedelta(days=1),
                not_after=now + dt.timedelta(days=30),
                server=True,
            )
            lines += [
                f"cafile {self._ca.ca_file}",
                f"certfile {self._server_cert.cert_file}",
                f"keyfile {self._server_cert.key_file}",
            ]
            if require_client_cert:
                lines += ["require_certificate true", "use_identity_as_username true"]
        self.config_file.write_text("\n".join(lines) + "\n")

    def _write_password_file(self, path: Path) -> None:
        tool = _find_binary("mosquitto_passwd")
        path.write_text("")
        path.chmod(0o600)
        for user, password in self.users.items():
            result = subprocess.run(
                [tool, "-b", str(path), user, password],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                pytest.fail(f"mosquitto_passwd failed for {user!r}: {result.stderr}", pytrace=False)

    @property
    def port(self) -> int:
        return self._port

    @property
    def host(self) -> str:
        """The host name clients should use: `localhost` for TLS (the cert's name)."""
        return "localhost" if self.tls else "127.0.0.1"

    @property
    def url(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        return f"{scheme}://{self.host}:{self._port}"

    @property
    def pid(self) -> int:
        """The running broker's process id (SIGHUP makes it reload passwords and ACL)."""
        assert self._proc is not None, "the broker is not running"
        return self._proc.pid

    @property
    def ca_file(self) -> Path:
        if self._ca is None:
            raise AttributeError("ca_file exists only for Broker(tls=True)")
        return self._ca.ca_file

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log(self) -> str:
        """mosquitto's log so far (empty if it has not written one)."""
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def make_client_cert(
        self,
        cn: str,
        *,
        valid_for: dt.timedelta = dt.timedelta(days=1),
        expired: bool = False,
    ) -> CertPair:
        """A client cert signed by this broker's CA; `expired=True` ended a day ago."""
        if self._ca is None:
            raise RuntimeError("client certs need Broker(tls=True)")
        now = dt.datetime.now(dt.UTC)
        if expired:
            not_before, not_after = now - dt.timedelta(days=2), now - dt.timedelta(days=1)
        else:
            not_before, not_after = now - dt.timedelta(minutes=5), now + valid_for
        stem = f"client-{cn}-{'expired' if expired else 'valid'}"
        return self._ca.issue(stem, cn, not_before=not_before, not_after=not_after, server=False)

    def start(self) -> None:
        """Start mosquitto and return once its port accepts TCP connections."""
        if self.running:
            return
        stderr_file = self.directory / "mosquitto.stderr"
        with stderr_file.open("wb") as stderr:
            self._proc = subprocess.Popen(
                [self._binary, "-c", str(self.config_file)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
            )
        try:
            wait_listening(self._proc, self._port, "mosquitto", START_TIMEOUT_S, self._report)
        except pytest.fail.Exception:
            self.kill()
            raise

    def _report(self) -> str:
        """Its config, stderr and log: what a failure to start is read from."""
        stderr = (self.directory / "mosquitto.stderr").read_text(errors="replace")
        return (
            f"--- config ---\n{self.config_file.read_text()}"
            f"--- stderr ---\n{stderr}--- log ---\n{self.log()}"
        )

    def stop(self) -> None:
        """SIGTERM and wait: clients see the connection close; the port is free after."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: the broker vanishes without closing anything cleanly."""
        self._end(signal.SIGKILL)

    def _end(self, sig: signal.Signals) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        wait_port_closed(self._port)

    def restart(self) -> None:
        """Stop and start again on the same port, with the same config."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop and remove the temp dir (if the Broker made it)."""
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Broker:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Broker({self.url}, running={self.running})"
