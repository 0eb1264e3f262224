"""An agent-like process that uploads one file and persists the upload URL the way the
agent does (written and fsynced in on_created, before any data goes), for kill -9 tests.

python -m tests.agent.evidence.upload_child FILE ENDPOINT TOKEN URL_FILE RATE CHUNK
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from agent.evidence.upload import Uploader


def persist(url_file: Path, url: str) -> None:
    tmp = url_file.with_suffix(".tmp")
    with open(tmp, "w") as out:
        out.write(url)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(url_file)


def main(argv: list[str]) -> int:
    path, endpoint, token, url_file, rate, chunk = argv
    resume = Path(url_file).read_text() if Path(url_file).exists() else None
    uploader = Uploader(chunk_size=int(chunk), rate_limit_bytes_per_s=int(rate) or None)
    result = uploader.upload(
        Path(path),
        endpoint=endpoint,
        bearer_token=token,
        metadata={"filename": Path(path).name},
        resume_url=resume,
        on_created=lambda url: persist(Path(url_file), url),
    )
    print(result.bytes_sent, result.resumed_from, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
