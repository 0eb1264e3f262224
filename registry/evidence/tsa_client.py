"""Asking the registry's time-stamping authority for an RFC 3161 stamp over a package's
signed manifest (RFC 3161 section 3.4, HTTP), with the kept client library (rfc3161-client)
building the query and reading the answer; the answer is checked against the configured
roots and the query's nonce before it is kept, so a wrong or hostile TSA leaves no stamp.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import requests
from cryptography import x509
from rfc3161_client import TimestampRequestBuilder, VerificationError, decode_timestamp_response

from registry.evidence.timestamp import MAX_STAMP_BYTES, verify_stamp

log = logging.getLogger("registry.evidence")

# A TSA answers in well under a second; a slow one must not hold the package check.
TSA_TIMEOUT_S = 15.0


class StampError(Exception):
    """No usable stamp was obtained; the message says why."""


@dataclass(frozen=True)
class Stamper:
    """The registry's TSA: where it answers and the roots its stamps must chain to."""

    url: str
    roots: tuple[x509.Certificate, ...]
    roots_file: Path

    def stamp(self, message: bytes) -> bytes:
        """The TSA's DER TimeStampResp over `message`, verified; StampError otherwise."""
        query = (
            TimestampRequestBuilder()
            .data(message)
            .nonce(nonce=True)
            .cert_request(cert_request=True)
            .build()
        )
        try:
            answer = requests.post(
                self.url,
                data=query.as_bytes(),
                headers={"Content-Type": "application/timestamp-query"},
                timeout=TSA_TIMEOUT_S,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise StampError(f"the TSA at {self.url} could not be reached: {exc}") from None
        if answer.status_code != 200:
            raise StampError(f"the TSA at {self.url} answered HTTP {answer.status_code}")
        body = answer.content
        if len(body) > MAX_STAMP_BYTES:
            raise StampError(f"the TSA at {self.url} answered {len(body)} bytes, over the limit")
        try:
            response = decode_timestamp_response(body)
            verify_stamp(response, message, list(self.roots))
        except (ValueError, VerificationError) as exc:
            raise StampError(f"the TSA at {self.url} gave no valid stamp: {exc}") from None
        if response.tst_info.nonce != query.nonce:
            raise StampError(f"the TSA at {self.url} answered another query (nonce differs)")
        return body
