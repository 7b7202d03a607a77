"""A database recorded from a fixture clip on a mock clock, and a test client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import argon2
import pytest
import trio
import trio.testing

from nvr.base.blocking import inline_blocking
from nvr.base.clock import SimulatedClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.config import BindConfig
from nvr.db.auth import Auth, SessionPolicy
from nvr.ingest.source import OpenOptions
from nvr.ingest.streamer import Streamer, StreamerOptions
from nvr.syncer import Syncer
from nvr.testing.env import RecordingEnv, create_env, open_env
from nvr.testing.replay import ReplayOpener, Session, load_packets
from nvr.web.app import create_app
from nvr.web.context import WebContext
from tests.support.determinism import T0, run_inline
from tests.support.paths import FIXTURES

SEC = UNITS_PER_SEC
CLIP = str(FIXTURES / "h264-640x360.mp4")
VIEW = BindConfig(allow_unauthenticated=("viewVideo",))


@pytest.fixture
def inline_web_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Runs the web modules' thread seams (``run_blocking``) inline. The test client
    consumes response bodies in tasks of its own, outside the test's context, so
    ``inline_blocking``'s context-variable switch does not reach the body's file reads;
    and under MockClock autojump a real thread would let virtual time (and the client's
    timeouts) run away. Use with ``pytest.mark.usefixtures("inline_web_threads")``."""
    monkeypatch.setattr("nvr.web.view.run_blocking", run_inline)
    monkeypatch.setattr("nvr.web.api.run_blocking", run_inline)
    monkeypatch.setattr("nvr.web.thumb.run_blocking", run_inline)
    monkeypatch.setattr("nvr.web.export.run_blocking", run_inline)
    monkeypatch.setattr("nvr.web.camera_test.run_blocking", run_inline)
    with inline_blocking():
        yield


@dataclass
class Recorded:
    env: RecordingEnv
    camera_uuid: str
    stream_id: int


@pytest.fixture
async def recorded(tmp_path: Path, autojump_clock: trio.testing.MockClock
                   ) -> AsyncIterator[Recorded]:
    """Two runs of the fixture clip: 200 s (recordings of 120, 60 and 20 s), a 5 s gap
    after the camera's EOF, then 70 s in one recording (each run's last recording has a
    trailing zero)."""
    r = await record(tmp_path)
    yield r
    r.env.close()


async def record(tmp_path: Path, seconds: float = 275, clip: str = CLIP) -> Recorded:
    """What the ``recorded`` fixture makes, in ``tmp_path`` (or only its first
    ``seconds``; or of another ``clip``); the caller closes ``env``."""
    create_env(tmp_path, streams=1, flush_if_sec=0)
    clocks = SimulatedClocks(T0)
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
    packets = load_packets(clip)
    opener = ReplayOpener(clocks, {"rtsp://cam0/main": [
        Session(packets, loops=None, end_after=6000), Session(packets, loops=None)]})
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    streamer = Streamer(db=env.db, stream_id=env.stream_ids[0], sdir=env.sdir, sink=syncer,
                        opener=opener, clocks=clocks,
                        options=StreamerOptions(jitter=0, initial_backoff=5 * SEC),
                        open_options=OpenOptions())
    with inline_blocking():
        async with trio.open_nursery() as nursery:
            await nursery.start(syncer.run)
            with trio.move_on_after(seconds):
                await streamer.run()
            nursery.cancel_scope.cancel()
    cam = env.db.cameras[env.db.streams[env.stream_ids[0]].camera_id]
    return Recorded(env, str(cam.uuid), env.stream_ids[0])


#: argon2id at its cheapest: tests hash many passwords
FAST_HASHER = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def web_context(r: Recorded, bind: BindConfig = VIEW, *,
                policy: SessionPolicy | None = None) -> WebContext:
    """A context whose ``Auth`` hashes passwords cheaply. Must be made inside the test's
    trio run (its clocks follow the mock clock)."""
    clocks = SimulatedClocks(T0)
    return WebContext(db=r.env.db, dirs={r.env.dir_id: r.env.sdir}, clocks=clocks, bind=bind,
                      time_zone_name="UTC", opener=ReplayOpener(clocks, {}),
                      auth=Auth(r.env.db, now=clocks.realtime, policy=policy,
                                hasher=FAST_HASHER))


def client(r: Recorded, bind: BindConfig = VIEW):  # type: ignore[no-untyped-def]
    return create_app(web_context(r, bind)).test_client()
