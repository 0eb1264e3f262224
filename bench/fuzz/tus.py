"""tus headers on both sides of an evidence upload.

Registry (registry/evidence/tus.py): the header parsers the intake's handlers call, on a real
starlette Request whose raw headers are the input (Tus-Resumable, Authorization,
Upload-Metadata with its request_id, filename and sha256, Upload-Length, Upload-Offset,
Upload-Checksum); each must return or raise TusError with a 4xx status.

Agent (agent/evidence/upload/): the replies it reads, through the real request methods
of one upload with a stand-in session that answers with the input's status and headers
(OPTIONS: Tus-Version, Tus-Max-Size, Tus-Extension; POST: Location; HEAD: Upload-Offset,
Upload-Length, Upload-Metadata; PATCH: Upload-Offset; any: Retry-After). Each must
return what tus allows or raise the module's own outcomes (UploadError, or the retry,
conflict and gone signals its loop handles); a Location must stay on the endpoint's
origin and allow-list.

Input: a first byte picks the side and the exchange; for the agent two more bytes give
the status; then `Name: value` lines, and after an empty line the reply's body.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

from bench.fuzz.target import Target

REGISTRY_CREATE, REGISTRY_PATCH, OPTIONS, POST, HEAD, PATCH = range(6)
MODES = 6
ENDPOINT = "https://evidence.example.org/files/"
ALLOW = (ENDPOINT,)
FILE_BYTES = 1000
CHUNK = 400
PATCH_FROM = 200
STATUSES = 600


def _headers(block: bytes) -> list[tuple[bytes, bytes]]:
    fields = []
    for line in block.split(b"\n"):
        name, colon, value = line.partition(b":")
        if colon:
            fields.append((name.strip().lower(), value.strip()))
    return fields


def build() -> Target:
    import requests
    from requests.structures import CaseInsensitiveDict
    from requests.utils import get_encoding_from_headers
    from starlette.requests import Request

    from agent.evidence import upload
    from agent.police_requests.token import upload_allowed
    from registry.evidence import tus as registry_tus
    from registry.evidence.verify import ID, SHA256_HEX, safe_filename

    def registry_side(mode: int, block: bytes) -> None:
        request = Request({"type": "http", "method": "POST", "headers": _headers(block)})
        try:
            registry_tus.require_tus(request)
            registry_tus.bearer(request)
            if mode == REGISTRY_CREATE:
                metadata = registry_tus.parse_metadata(request.headers.get("upload-metadata", ""))
                assert all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
                ID.fullmatch(metadata.get("request_id", ""))
                length = registry_tus.int_header(request, "Upload-Length")
                assert length >= 0
                safe_filename(metadata.get("filename", ""))
                SHA256_HEX.fullmatch(metadata.get("sha256", "").lower())
            else:
                offset = registry_tus.int_header(request, "Upload-Offset")
                assert offset >= 0
                checksum = registry_tus.parse_checksum(request)
                assert checksum is None or checksum[0] in registry_tus.CHECKSUMS
                registry_tus.declared_length(request)
        except registry_tus.TusError as exc:
            assert 400 <= exc.status < 500, exc.status

    source = Path(tempfile.mkdtemp(prefix="fuzz-tus-")) / "clip.mp4"
    source.write_bytes(bytes(FILE_BYTES))
    uploader = upload.Uploader(url_allowed=lambda url: upload_allowed(url, ALLOW))
    answer: dict[str, Any] = {}

    class Session:
        def request(self, method: str, url: str, **_: Any) -> requests.Response:
            response = requests.Response()
            response.status_code = answer["status"]
            # What http.client hands requests: header text decoded as Latin-1.
            response.headers = CaseInsensitiveDict(
                {k.decode("latin-1"): v.decode("latin-1") for k, v in answer["headers"]}
            )
            response.encoding = get_encoding_from_headers(response.headers)
            response._content = answer["body"]
            response.url = url
            return response

    uploader.session = Session()  # type: ignore[assignment]
    expected = (upload.UploadError, upload._Transient, upload._Conflict, upload._Gone)

    def agent_side(mode: int, status: int, block: bytes, body: bytes) -> None:
        answer.update(status=status, headers=_headers(block), body=body)
        transfer = upload._Transfer(
            uploader,
            source,
            endpoint=ENDPOINT,
            auth=upload._BearerAuth("t0k"),
            metadata={"request_id": "req-1", "filename": "clip.mp4", "sha256": "0" * 64},
            on_created=lambda _url: None,
            on_progress=lambda _done, _total: None,
            stop=None,  # type: ignore[arg-type]
        )
        try:
            if mode == OPTIONS:
                assert transfer._discover() in (True, False)
            elif mode == POST:
                url = transfer._create()
                assert upload.origin(url) == upload.origin(ENDPOINT), url
                assert upload_allowed(url, ALLOW), url
            elif mode == HEAD:
                assert 0 <= transfer._head(ENDPOINT + "abc") <= FILE_BYTES
            else:
                file = io.BytesIO(bytes(FILE_BYTES))
                transfer._up.chunk_size = CHUNK
                new = transfer._patch(file, ENDPOINT + "abc", PATCH_FROM)
                assert PATCH_FROM < new <= PATCH_FROM + CHUNK, new
        except expected:
            pass

    def one_input(data: bytes) -> None:
        if len(data) < 3:
            return
        mode = data[0] % MODES
        if mode in (REGISTRY_CREATE, REGISTRY_PATCH):
            registry_side(mode, data[1:])
            return
        status = int.from_bytes(data[1:3], "big") % STATUSES
        block, _, body = data[3:].partition(b"\n\n")
        agent_side(mode, status, block, body)

    def seed(mode: int, lines: list[str], status: int = 0, body: bytes = b"") -> bytes:
        head = bytes([mode]) + (status.to_bytes(2, "big") if mode >= OPTIONS else b"")
        return head + "\n".join(lines).encode("latin-1") + (b"\n\n" + body if body else b"")

    tus = "Tus-Resumable: 1.0.0"
    seeds = [
        seed(
            REGISTRY_CREATE,
            [
                tus,
                "Authorization: Bearer t0k",
                "Upload-Length: 1000",
                "Upload-Metadata: request_id cmVxLTE=,filename Y2xpcC5tcDQ=,sha256 "
                "MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAw"
                "MDAwMDAwMDA=",
            ],
        ),
        seed(
            REGISTRY_PATCH,
            [
                tus,
                "Authorization: bearer t0k",
                "Upload-Offset: 200",
                "Content-Length: 400",
                "Upload-Checksum: sha256 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
            ],
        ),
        seed(
            OPTIONS,
            [
                tus,
                "Tus-Version: 1.0.0,0.2.2",
                "Tus-Extension: creation,checksum,termination",
                "Tus-Checksum-Algorithm: sha1,sha256",
                "Tus-Max-Size: 1000000",
            ],
            204,
        ),
        seed(POST, [tus, "Location: /files/0123456789abcdef0123456789abcdef"], 201),
        seed(POST, [tus, "Location: https://elsewhere.example/files/x"], 201),
        seed(
            HEAD,
            [tus, "Upload-Offset: 400", "Upload-Length: 1000", "Upload-Metadata: sha256 MA=="],
            200,
        ),
        seed(PATCH, [tus, "Upload-Offset: 600"], 204),
        seed(PATCH, [tus, "Retry-After: 3"], 429, b"slow down"),
        seed(HEAD, ["Content-Type: text/plain; charset=utf-8"], 404, "gone \u00e9".encode()),
        # What fuzzing found (tests/registry/evidence/test_intake.py,
        # tests/agent/evidence/test_upload.py).
        seed(
            REGISTRY_PATCH,
            [
                tus,
                "Authorization: Bearer t",
                "Upload-Offset: 0",
                "Upload-Checksum: sha256 47DEQ\u00e9=",
            ],
        ),
        seed(REGISTRY_CREATE, [tus, "Authorization: Bearer t", "Upload-Length: " + "9" * 5000]),
        seed(HEAD, [tus, "Upload-Offset: \u00b2"], 200),
        seed(PATCH, [tus, "Upload-Offset: " + "9" * 5000], 204),
        seed(POST, [tus, "Location: //[abc/x"], 201),
        seed(OPTIONS, [tus, "Tus-Max-Size: \u00b9"], 204),
        seed(PATCH, [tus, "Retry-After: \u00b3"], 429),
        seed(HEAD, ["Content-Type: text/plain; charset=utf\x00-8"], 404, b"gone"),
    ]
    return Target(one_input, seeds)
