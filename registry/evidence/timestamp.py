"""The package's RFC 3161 time stamp (`manifest.tsr`), checked offline: a time-stamping
authority that neither the device nor the registry controls signed that the exact bytes
of `manifest.jws` (signature included) existed at its time. So the latest moment the
package can have been signed does not rest on the device's clock or word.

The stamp is the TSA's whole TimeStampResp (DER), as it answered; the registry asks for it
when the signed manifest arrives (tsa_client.py). Checked with the kept RFC 3161 library
(rfc3161-client, Trail of Bits): the TSA's signature, its certificate's chain to a
trusted root, its critical timeStamping key usage, and the imprint against manifest.jws.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from rfc3161_client import (
    TimeStampResponse,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

STAMP_NAME = "manifest.tsr"
# The registry's copy of the TSA roots it trusts, for offline checks; like agent-key.pem
# it proves nothing by itself: compare its fingerprint with the TSA's published one.
TSA_ROOTS_NAME = "tsa-roots.pem"
# A TimeStampResp is a few kilobytes; this keeps a hostile file from being read whole.
MAX_STAMP_BYTES = 1 << 20


@dataclass(frozen=True)
class StampCheck:
    """`ok` only if a stamp was there and verified; `words` say what it proves, or what
    is wrong with it, or that there is none."""

    present: bool
    ok: bool
    words: str


def load_roots(path: Path) -> list[x509.Certificate]:
    """The trusted TSA root certificates in a PEM file; ValueError saying what is wrong."""
    try:
        roots = x509.load_pem_x509_certificates(path.read_bytes())
    except ValueError:
        # The library's own message points at its FAQ; the owner of the file needs this.
        raise ValueError(
            "not PEM certificates (-----BEGIN CERTIFICATE----- blocks) or none in it"
        ) from None
    if not roots:
        raise ValueError("no certificate in it")
    return roots


def fingerprint(roots: list[x509.Certificate]) -> str:
    """SHA-256 fingerprints of the roots, for people to compare."""
    return ", ".join(root.fingerprint(hashes.SHA256()).hex() for root in roots)


def verify_stamp(
    response: TimeStampResponse, message: bytes, roots: list[x509.Certificate]
) -> None:
    """Raise VerificationError unless `response` stamps `message` and chains to one of
    `roots`. The library checks one root set at a time; any one suffices."""
    failures = []
    for root in roots:
        try:
            VerifierBuilder().add_root_certificate(root).build().verify_message(response, message)
            return
        except VerificationError as exc:
            failures.append(str(exc))
    raise VerificationError("; ".join(failures))


def check_stamp(directory: Path, roots: list[x509.Certificate] | None) -> StampCheck:
    """The stamp in `directory` against manifest.jws there and the trusted `roots`
    (None: none given, so the stamp cannot be checked)."""
    path = directory / STAMP_NAME
    if not path.is_file() or path.is_symlink():
        return StampCheck(False, False, "no RFC 3161 time stamp: when the package was signed "
                                        "rests on the device's own clock")  # fmt: skip
    if path.stat().st_size > MAX_STAMP_BYTES:
        return StampCheck(True, False, f"{STAMP_NAME} is over {MAX_STAMP_BYTES} bytes")
    manifest = directory / "manifest.jws"
    if not manifest.is_file():
        return StampCheck(True, False, f"{STAMP_NAME}: there is no manifest.jws it could stamp")
    try:
        response = decode_timestamp_response(path.read_bytes())
    except ValueError as exc:
        return StampCheck(
            True, False, f"{STAMP_NAME} is not an RFC 3161 time-stamp response: {exc}"
        )
    info = response.tst_info
    when = info.gen_time.strftime("%Y-%m-%dT%H:%M:%SZ")
    if roots is None:
        return StampCheck(
            True, False,
            f"{STAMP_NAME} says manifest.jws existed at {when}, but it was not checked: no "
            "trusted TSA certificate was given",
        )  # fmt: skip
    message = manifest.read_bytes()
    try:
        verify_stamp(response, message, roots)
    except VerificationError as exc:
        if not _imprint_matches(response, message):
            said = "it stamps other data than this manifest.jws"
        else:
            said = f"it does not verify against the trusted TSA certificates ({exc})"
        return StampCheck(True, False, f"{STAMP_NAME}: {said}")
    return StampCheck(
        True, True,
        f"manifest.jws, with its signature, existed at {when} (RFC 3161 time stamp, serial "
        f"{info.serial_number}, by {_tsa_name(response)}; trusted root SHA-256 "
        f"{fingerprint(roots)})",
    )  # fmt: skip


# The imprint algorithms the library verifies (rfc3161_client.verify), by OID.
_IMPRINT_HASHES = {
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}


def _imprint_matches(response: TimeStampResponse, message: bytes) -> bool:
    imprint = response.tst_info.message_imprint
    name = _IMPRINT_HASHES.get(imprint.hash_algorithm.dotted_string)
    return name is not None and hashlib.new(name, message).digest() == imprint.message


def _tsa_name(response: TimeStampResponse) -> str:
    for der in response.signed_data.certificates:
        cert = x509.load_der_x509_certificate(der)
        signer = next(iter(response.signed_data.signer_infos))
        if cert.issuer == signer.issuer and cert.serial_number == signer.serial_number:
            return cert.subject.rfc4514_string()
    return "a TSA whose certificate is not in the stamp"
