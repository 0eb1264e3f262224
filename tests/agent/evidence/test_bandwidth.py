"""The token bucket behind `upload_rate_limit`, on a fake clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.evidence.bandwidth import TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def bucket(rate: float, burst: float) -> tuple[TokenBucket, FakeClock]:
    clock = FakeClock()
    return TokenBucket(rate, burst=burst, clock=clock, sleep=clock.sleep), clock


@pytest.mark.parametrize(
    ("rate", "burst", "takes", "waits"),
    [
        (1000, 0, [500, 500], [0.5, 0.5]),
        (1000, 500, [500, 500, 500], [0.0, 0.5, 0.5]),
        (1000, 500, [2000], [1.5]),  # a piece bigger than the burst is a debt, not a burst
        (100, 100, [50, 50, 50, 50], [0.0, 0.0, 0.5, 0.5]),
    ],
)
def test_waits(rate: float, burst: float, takes: list[int], waits: list[float]) -> None:
    tokens, _ = bucket(rate, burst)
    assert [tokens.take(n) for n in takes] == pytest.approx(waits)


def test_idle_time_refills_only_up_to_the_burst() -> None:
    tokens, clock = bucket(1000, 200)
    tokens.take(200)
    clock.now += 60  # a minute idle earns no more than the burst
    assert tokens.take(200) == 0
    assert tokens.take(1000) == pytest.approx(1.0)


@given(
    rate=st.integers(1_000, 10_000_000),
    pieces=st.lists(st.integers(1, 100_000), min_size=1, max_size=200),
    idle=st.lists(st.floats(0, 0.5), min_size=1, max_size=200),
)
def test_never_faster_than_rate_plus_burst(rate: int, pieces: list[int], idle: list[float]) -> None:
    tokens, clock = bucket(rate, rate * 0.05)
    start = clock.now
    for index, piece in enumerate(pieces):
        clock.now += idle[index % len(idle)]
        tokens.take(piece)
    # Once take() returns the bytes are on their way; they fit under rate * t + burst.
    assert sum(pieces) <= rate * (clock.now - start) + rate * 0.05 + 1e-6 * rate


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(0)
