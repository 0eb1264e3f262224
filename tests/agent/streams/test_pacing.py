"""The read pacer: pauses only when the reader has caught up, never loses track of time."""

from __future__ import annotations

from agent.streams.pacing import READ_BATCH_S, RESYNC_AFTER_S, ReadPacer

FRAME_S = 0.04  # 25 fps


def simulate(seconds: float, *, stream_rate: float = 1.0) -> tuple[int, float, list[float]]:
    """A 25 fps camera whose frame k arrives at k * FRAME_S (wall) with stream time
    k * FRAME_S * stream_rate; the reader takes no time and pauses as told.
    Returns (pauses, largest delay between arrival and read, arrival estimates)."""
    pacer = ReadPacer()
    now = 0.0  # when the reader asks for the next frame
    pauses = 0
    worst_delay = 0.0
    estimates: list[float] = []
    k = 0
    while k * FRAME_S < seconds:
        arrived = k * FRAME_S
        read = max(now, arrived)  # a read blocks until the frame is there
        estimate, pause = pacer.step(now, read, arrived * stream_rate)
        now = read
        estimates.append(estimate)
        worst_delay = max(worst_delay, now - arrived)
        if pause:
            pauses += 1
            now += pause
        k += 1
    return pauses, worst_delay, estimates


def test_a_live_stream_is_read_in_bursts_and_never_much_later_than_the_batch() -> None:
    pauses, worst_delay, _ = simulate(60.0)
    # Instead of blocking 25 times a second, the reader pauses about twice a second.
    assert 60 / (READ_BATCH_S + 2 * FRAME_S) <= pauses <= 60 / (READ_BATCH_S - FRAME_S)
    assert worst_delay <= READ_BATCH_S + FRAME_S


def test_arrival_estimates_follow_the_real_arrivals_not_the_bursts() -> None:
    _, _, estimates = simulate(20.0)
    arrivals = [k * FRAME_S for k in range(len(estimates))]
    assert estimates == sorted(estimates)
    assert max(abs(e - a) for e, a in zip(estimates, arrivals, strict=True)) <= 1e-9


def test_a_camera_whose_timestamps_stand_still_is_read_as_it_comes() -> None:
    pauses, worst_delay, estimates = simulate(10.0, stream_rate=0.0)
    assert pauses <= 10 / RESYNC_AFTER_S + 1
    assert worst_delay <= READ_BATCH_S + FRAME_S
    assert estimates == sorted(estimates)


def test_a_camera_clock_running_slow_or_fast_does_not_add_up_to_lag() -> None:
    for rate in (0.99, 1.01):
        _, worst_delay, _ = simulate(600.0, stream_rate=rate)
        assert worst_delay <= READ_BATCH_S + 2 * FRAME_S


def test_packets_without_timestamps_are_never_held_back() -> None:
    pacer = ReadPacer()
    for i in range(100):
        estimate, pause = pacer.step(i * FRAME_S - FRAME_S, i * FRAME_S, None)
        assert (estimate, pause) == (i * FRAME_S, 0.0)
