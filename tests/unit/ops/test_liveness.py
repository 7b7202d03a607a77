"""The liveness rule (``nvr.ops.liveness``) on a mock clock: what is "truly hung" and what
is one camera misbehaving (issue 12, point 6), at exact virtual times."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from nvr.base import errors
from nvr.base.clock import SimulatedClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.ingest.source import OpenOptions, Source
from nvr.ingest.streamer import Streamer, StreamerOptions
from nvr.ingest.thread_watch import ThreadWatch
from nvr.ops.liveness import Liveness, LivenessLimits
from nvr.syncer import Syncer
from nvr.testing.env import create_env, open_env
from nvr.testing.replay import ReplayOpener, Session
from tests.support.determinism import T0

SEC = UNITS_PER_SEC
URL = "rtsp://cam0/main"
LIMITS = LivenessLimits(streamer_stuck=60 * SEC, thread_hung=60 * SEC)


pytestmark = pytest.mark.usefixtures("inline_seam")


async def test_a_camera_thread_is_hung_only_long_after_its_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    clocks = SimulatedClocks(T0)
    threads = ThreadWatch(clocks)
    liveness = Liveness(clocks, {}, limits=LIMITS, threads=threads)
    running = {"a": True, "b": True}
    threads.expect_end("nvr connect rtsp://a/", lambda: running["a"], 42 * SEC)
    threads.expect_end("nvr connect rtsp://b/", lambda: running["b"], 42 * SEC)
    running["b"] = False  # returned in time, as FFmpeg's interrupt makes it
    await clocks.sleep_until(42 * SEC + LIMITS.thread_hung)
    assert [t.name for t in threads.running()] == ["nvr connect rtsp://a/"]
    assert threads.overdue() == [("nvr connect rtsp://a/", 60 * SEC)]
    assert liveness.problems() == []  # not more than the limit after its deadline
    await clocks.sleep(1)
    assert [str(p) for p in liveness.problems()] == [
        "thread 'nvr connect rtsp://a/': still running 1m00.000s after its deadline"
    ]
    running["a"] = False  # it did return after all
    assert liveness.problems() == []
    assert threads.running() == []


async def test_a_thread_that_ended_before_it_was_registered_is_not_watched(
    autojump_clock: trio.testing.MockClock,
) -> None:
    clocks = SimulatedClocks(T0)
    threads = ThreadWatch(clocks)
    threads.expect_end("nvr connect rtsp://a/", lambda: False, 0)
    await clocks.sleep(SEC)
    assert threads.running() == [] and threads.overdue() == []


class ShieldedOpener:
    """An opener whose open ignores cancellation until ``release``: a hung task, not a
    slow camera."""

    def __init__(self) -> None:
        self.release = trio.Event()

    async def open(self, url: str, options: OpenOptions) -> Source:
        with trio.CancelScope(shield=True):
            await self.release.wait()
        raise errors.Unavailable("released")


@pytest.mark.parametrize("hung", [False, True], ids=["slow camera", "hung task"])
async def test_a_streamer_is_a_problem_only_when_its_task_hangs(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, hung: bool
) -> None:
    """A camera whose handshake never ends (a ReplayOpener that takes an hour, and honours
    cancellation as the PyAV opener does) times out every 20 s and is never a problem; a
    streamer task that does not honour its connect deadline is, once connecting for more
    than the limit."""
    create_env(tmp_path, streams=1, flush_if_sec=0)
    clocks = SimulatedClocks(T0)
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
    try:
        opener = ShieldedOpener() if hung else ReplayOpener(
            clocks, {URL: [Session(open_delay=3600 * SEC)]}
        )
        syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
        streamer = Streamer(
            db=env.db,
            stream_id=env.stream_ids[0],
            sdir=env.sdir,
            sink=syncer,
            opener=opener,
            clocks=clocks,
            options=StreamerOptions(jitter=0.0),
            open_options=OpenOptions(connect_timeout=20 * SEC),
        )
        liveness = Liveness(clocks, {}, {streamer.stream_id: streamer}, LIMITS)
        seen: list[tuple[int, list[str]]] = []
        async with trio.open_nursery() as nursery:
            await nursery.start(streamer.run)  # connecting from 0 s
            for second in range(0, 301, 5):  # a ping every 5 s
                await clocks.sleep_until(second * SEC)
                if problems := liveness.problems():
                    seen.append((second, [str(p) for p in problems]))
            if isinstance(opener, ShieldedOpener):
                opener.release.set()
            nursery.cancel_scope.cancel()
    finally:
        env.close()
    if not hung:
        assert seen == []
        assert streamer.counters.disconnects["connect timeout"] >= 5
        return
    # connecting since 0 s: seen stalled from the first sample on; a problem once more
    # than 60 s have passed (65 s), for as long as it lasts
    assert seen[0] == (65, ["streamer of cam0 main: connecting for 1m05.000s"])
    assert [second for second, _ in seen] == list(range(65, 301, 5))
