"""nvr.ingest.pacing: when a caught-up camera reader pauses, at exact times."""

from __future__ import annotations

from nvr.ingest.pacing import ReadCoalescer

FRAME = 1 / 30


def test_a_reader_at_the_live_edge_pauses_and_one_behind_reads_on() -> None:
    c = ReadCoalescer(0.15, creep=0.0, edge_slack=0.04)
    # frames read as they arrive (arrival = media time + 2 s of transport): pause
    assert c.pause_after(2.0, 0.0) == 0.15 and c.at_edge
    # after the pause, the 4 frames that gathered are read back to back: the first waited
    # 117 ms, the next ones less; only the last, which arrived 17 ms ago, is at the edge
    read_at = 2.0 + 0.15
    waits = [c.pause_after(read_at, k * FRAME) for k in range(1, 5)]
    assert waits == [0.0, 0.0, 0.0, 0.15]
    assert c.at_edge


def test_a_reader_that_fell_behind_never_pauses_until_it_catches_up() -> None:
    c = ReadCoalescer(0.15, creep=0.0)
    c.pause_after(10.0, 0.0)
    # a busy machine: each frame is read 100 ms later than the one before arrived
    lags = [c.pause_after(10.0 + k * (FRAME + 0.1), k * FRAME) for k in range(1, 20)]
    assert lags == [0.0] * 19 and not c.at_edge
    # reading the backlog as fast as possible until a frame arrives as it is read
    now = 10.0 + 19 * (FRAME + 0.1)
    assert c.pause_after(now, now - 10.0) == 0.15


def test_the_edge_creeps_so_a_slow_camera_clock_keeps_pausing() -> None:
    # The camera's clock runs 500 ppm slow: each frame's offset grows. Without creep the
    # reader would stop pausing after 100 s (50 ms of drift); with 1 ms/s it never does.
    stuck = ReadCoalescer(0.15, creep=0.0)
    creeping = ReadCoalescer(0.15, creep=0.001)
    for second in range(0, 400):
        arrival = float(second)
        media = second * (1 - 500e-6)
        paused = stuck.pause_after(arrival, media), creeping.pause_after(arrival, media)
    assert paused == (0.0, 0.15)


def test_no_pause_configured() -> None:
    c = ReadCoalescer(0.0)
    assert c.pause_after(1.0, 0.0) == 0.0 and c.at_edge
