"""The agent's config loader (agent/config/): YAML text in, a config or a ConfigError
that lists every problem.

Each input is written to a file in a private folder (the loader reads a path, and
relative paths in the config resolve next to it) that also holds a password file and a
police key, so the seeds reach the loader's file reading too. PyYAML's pure-Python
parser is not instrumented: it would guide the search through YAML syntax, but halves
the rate of a target that is already the slowest (PyYAML's pure-Python parser takes most of
its time), and the project's own code sees every shape of YAML data anyway.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.fuzz.target import Target

# Inputs stay small: the parse time grows with the text, and the example config (its
# comments left out) is about 2 kB.
MAX_LEN = 4096
REPO_ROOT = Path(__file__).resolve().parents[2]
# A public key in both spellings the config takes (RFC 8037's example key).
JWK_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
PEM = """-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=
-----END PUBLIC KEY-----
"""

SMALL = """\
agent: {id: shop-1, data_dir: ./data}
registry: {broker: "mqtt://127.0.0.1:1883", username: shop-1, password_file: broker.pass}
police:
  keys: [{file: police.pem}, {jwk: {kty: OKP, crv: Ed25519, x: JWK_X}}]
  upload_allow: ["https://evidence.example.org/files/"]
cameras:
  - id: front
    url: file:clip.mp4
    recording: {mode: directory, path: ./nvr, pattern: "%Y/%m/%d/%H%M%S.mp4"}
  - &cam {id: back, url: "rtsp://192.168.1.21/s", username: admin, password_file: cam.pass}
  - {<<: *cam, id: side, recording: {segment: 2m, retention: 3d}}
""".replace("JWK_X", JWK_X)
WRONG = """\
agent: {id: Shop 1, locale: fr}
registry: {broker: "http://user:pw@host", health_interval: 0s, keepalive: yes}
cameras: [{id: front, url: "rtsp://u:p@cam/s", on: 1}, {id: front, url: ""}]
storage: {max_bytes: 5XB}
x: &a [*a]
"""


def build() -> Target:
    from agent.config import AgentConfig, load_config
    from contract.errors import ConfigError

    # In memory where there is such a folder: a file per input on a disk costs more than
    # parsing it.
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(prefix="fuzz-config-", dir=shm if shm.is_dir() else None))
    (folder / "broker.pass").write_text("secret\n")
    (folder / "cam.pass").write_text("camera secret\n")
    (folder / "police.pem").write_text(PEM)
    path = folder / "config.yaml"

    def one_input(data: bytes) -> None:
        path.write_bytes(data)
        try:
            config = load_config(path)
        except ConfigError as exc:
            assert exc.errors and all(isinstance(e, str) and e for e in exc.errors), exc.errors
            return
        assert isinstance(config, AgentConfig)
        assert config.cameras, "a config without cameras was accepted"

    seeds = [
        _without_comments((REPO_ROOT / "config.example.yaml").read_text()).encode(),
        SMALL.encode(),
        WRONG.encode(),
        b"{}",
        b"cameras:\n- [[[[[[[[[[]]]]]]]]]]\n",
        b"\xef\xbb\xbfagent: {id: x}\n",
        # What fuzzing found (tests/agent/config/test_config.py): each crashed `camera-agent check`.
        SMALL.encode() + b"x: \x00\n",
        SMALL.encode() + b"x: 9999-99-99\n",
        SMALL.replace("%H%M%S", "%H%M%m").encode(),
    ]
    return Target(one_input, seeds)


def _without_comments(text: str) -> str:
    return "".join(line for line in text.splitlines(True) if not line.lstrip().startswith("#"))
