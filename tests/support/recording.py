"""Synthetic frames and a recorder loop for storage tests on a mock clock, and a way to
record committed video through the real syncer."""

from __future__ import annotations

from dataclasses import dataclass

import trio

from nvr.base.clock import Clocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.storage.writer import RecordingSink, RecordingWriter, Run
from nvr.syncer import Syncer
from nvr.testing.env import RecordingEnv


@dataclass(frozen=True, slots=True)
class SynthFrame:
    data: bytes
    pts: int
    is_key: bool


def synth_frame(i: int, *, gop: int = 30, frame_ticks: int = 3000, pts0: int = 0) -> SynthFrame:
    """Frame ``i`` of a deterministic stream: key frames every ``gop`` frames, sizes that
    vary with ``i``, content that names the frame."""
    is_key = i % gop == 0
    size = (2000 if is_key else 200) + (i * 37) % 101
    payload = (b"K" if is_key else b"P") + i.to_bytes(4, "big")
    data = (payload * (size // len(payload) + 1))[:size]
    return SynthFrame(data, pts0 + i * frame_ticks, is_key)


async def record_run(
    env: RecordingEnv,
    sink: RecordingSink,
    clocks: Clocks,
    stream_id: int,
    *,
    frames: int,
    rotate_every: int = 60 * UNITS_PER_SEC,
    gop: int = 30,
    frame_ticks: int = 3000,
    clean_end: bool = True,
) -> Run:
    """Feeds ``frames`` frames in real (virtual) time, one per ``frame_ticks``, rotating at
    the first key frame after each ``rotate_every`` of media, as the streamer does."""
    run = Run()
    writer: RecordingWriter | None = None
    start_pts = 0
    for i in range(frames):
        f = synth_frame(i, gop=gop, frame_ticks=frame_ticks)
        if writer is not None and f.is_key and f.pts - start_pts >= rotate_every:
            await writer.close(f.pts)
            writer = None
        if writer is None:
            writer = RecordingWriter(db=env.db, sdir=env.sdir, sink=sink, stream_id=stream_id,
                                     run=run, video_sample_entry_id=env.entry_id)
            start_pts = f.pts
        await writer.write([f], clocks.realtime())
        await clocks.sleep(frame_ticks)
    if writer is not None:
        await writer.close(frames * frame_ticks if clean_end else None,
                           "end of test" if clean_end else "disconnect")
    return run


async def record_seconds(env: RecordingEnv, clocks: Clocks, seconds: int) -> None:
    """Records ``seconds`` of 1 fps video (a key frame every 2) on the env's first stream
    through the real syncer, committed, then stops that syncer."""
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        await record_run(env, syncer, clocks, env.stream_ids[0], frames=seconds, gop=2,
                         frame_ticks=UNITS_PER_SEC)
        await clocks.sleep(UNITS_PER_SEC)
        nursery.cancel_scope.cancel()
    env.db.flush_listeners.remove(syncer._poke_now)
