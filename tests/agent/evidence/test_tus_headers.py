"""Upload-Metadata encoding and the origin check of upload URLs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.evidence.upload import decode_metadata, encode_metadata, loggable, origin

KEYS = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters=","),
    min_size=1,
    max_size=20,
)


def test_encoding_is_the_tus_one() -> None:
    assert encode_metadata({"filename": "a b.mp4", "request_id": "r-1"}) == (
        "filename YSBiLm1wNA==,request_id ci0x"
    )
    assert encode_metadata({}) == ""


@given(st.dictionaries(KEYS, st.text(max_size=100), max_size=8))
def test_decode_inverts_encode(metadata: dict[str, str]) -> None:
    assert decode_metadata(encode_metadata(metadata)) == metadata


@pytest.mark.parametrize("key", ["", "a b", "a,b", "naïve", "tab\t"])
def test_invalid_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError, match="metadata key"):
        encode_metadata({key: "x"})


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://Evidence.example.org/files/", ("https", "evidence.example.org", 443)),
        ("https://evidence.example.org:443/files/x", ("https", "evidence.example.org", 443)),
        ("http://127.0.0.1:1080/files/", ("http", "127.0.0.1", 1080)),
        ("http://localhost/files/", ("http", "localhost", 80)),
    ],
)
def test_origin(url: str, expected: tuple[str, str, int]) -> None:
    assert origin(url) == expected


@pytest.mark.parametrize(
    "url", ["ftp://host/x", "file:///etc/passwd", "https://user:pw@host/x", "https://a@b/x", "x"]
)
def test_origin_refuses(url: str) -> None:
    with pytest.raises(ValueError):
        origin(url)


def test_loggable_drops_credentials_and_query() -> None:
    assert loggable("https://u:p@host:8443/files/abc?token=s#f") == "https://host:8443/files/abc"
