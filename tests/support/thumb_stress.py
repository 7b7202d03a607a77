"""A child process that drops part-way frame-threaded thumbnail decoders many times:
``python -m tests.support.thumb_stress DIR COUNT`` (``tests/unit/web/test_thumb_stress.py``
runs it under a timeout: such a hang holds the GIL and freezes the whole interpreter, so
it cannot be caught inside the suite's own process).

Decoders are fed on real worker threads and let go of from the trio thread, as the daemon
does; the suite's 1080p clip, whose frames take a frame thread several milliseconds, so a
decoder is often let go of while a frame thread still works on the frame after the one it
showed (a decoder fed ``LOOKAHEAD`` frames past its target).

0. ``dropped``: ``COUNT // 2`` new decoders fed 1 to 29 frames on a worker thread, then
   dropped on the trio thread at once (the worst a collector could do): the packets
   ``nvr.thumbnail`` makes own their bytes, so no frame thread needs the GIL.
1. ``decoders``: ``COUNT`` renders of the clip's frames through ``nvr.thumbnail`` as
   ``nvr.web.thumb`` makes them (``render_continuing`` on a worker thread; the decoder it
   hands back kept in ``Decoders``, at most two, of three pointers moving forward 1 to 5
   frames, jumping back now and then), so renders evict decoders part-way; every 2 to 8
   renders a shutdown lets go of all kept decoders at once.
2. ``app``: ``COUNT // 2`` ``thumb.jpg`` requests in the same way, through the app (20 s of
   the clip recorded into ``DIR`` on a mock clock), shutting down every 1 to 4 requests
   (``Thumbnails.aclose``, as ``nvr.web.server`` does), everything then collected on the
   trio thread.

Code without ``close_all``/``aclose`` let go of decoders on the trio thread (``Decoders``
deleted those it evicted; the collector, at shutdown, the rest): the same steps emulate
that, and it hangs (``avcodec_free_context`` waiting for a frame thread that waits for the
GIL). Prints ``ok`` and counts.
"""

from __future__ import annotations

import faulthandler
import gc
import random
import sys
from pathlib import Path

import av
import trio
import trio.testing

import nvr.thumbnail as thumbnail
from nvr.base.blocking import run_blocking
from nvr.db.recording import VideoSampleEntry
from nvr.db.types import ListedRecording
from nvr.testing.replay import load_packets
from nvr.web.app import create_app
from nvr.web.thumb import Thumbnails
from tests.support.paths import FIXTURES
from tests.support.web import Recorded, record, web_context

#: a stuck child prints every thread's stack after this long (the parent's timeout is longer)
DUMP_AFTER_SEC = 100
FRAME = 3000
CLIP = str(FIXTURES / "h264-1920x1080.mp4")  # 60 frames, key frames 0 and 30
SECONDS = 20.0


async def let_go(conts: list[thumbnail.Continuation] | None) -> None:
    """Closes decoders on a worker thread (or, in code without ``close_all``, lets them go
    here, on the trio thread, as that code did)."""
    close_all = getattr(thumbnail, "close_all", None)
    if conts and close_all is not None:
        await run_blocking(close_all, conts)


def fed_part_way(entry: VideoSampleEntry, data: list[bytes], frames: int
                 ) -> av.VideoCodecContext:
    """A new decoder fed ``frames`` frames from the key frame the way ``nvr.thumbnail``
    makes its packets (code without ``_packet`` made them straight from Python bytes)."""
    decoder = thumbnail._new_decoder(entry, thumbnail.FRAME_THREADS)
    make = getattr(thumbnail, "_packet", None)
    for i in range(frames):
        packet = av.Packet(data[i]) if make is None else make(data[i], 0, len(data[i]), i)
        packet.pts = i
        for _ in decoder.decode(packet):
            pass
    return decoder


async def dropped(count: int) -> str:
    """The worst case: ``count`` decoders fed on a worker thread, then dropped at once on
    the trio thread (as the collector may, at any point), a frame thread still working."""
    packets = load_packets(CLIP)
    entry = packets[0].sample_entry
    data = [bytes(p.data) for p in packets]
    rng = random.Random(14)
    for _ in range(count):
        decoder = await run_blocking(fed_part_way, entry, data, rng.randrange(1, 30))
        del decoder
    return f"dropped: {count} decoders"


async def decoders(count: int) -> str:
    packets = load_packets(CLIP)
    entry = packets[0].sample_entry
    data = [bytes(p.data) for p in packets]
    rng = random.Random(14)
    kept = thumbnail.Decoders()
    at = [0, 0, 0]
    shutdowns = evicted = 0
    next_shutdown = rng.randrange(2, 9)
    for n in range(count):
        i = rng.choices(range(3), (9, 9, 2))[0]
        at[i] += rng.randrange(1, 6)
        if at[i] >= len(data) or rng.random() < 0.05:
            at[i] = rng.randrange(len(data))
        target = at[i]
        key = 30 if target >= 30 else 0
        cont = kept.take(i, key, target)
        first = key if cont is None else cont.fed + 1
        last = max(first - 1, min(target + thumbnail.LOOKAHEAD, len(data) - 1))
        sizes = tuple(len(d) for d in data[first : last + 1])
        _, back = await run_blocking(thumbnail.render_continuing, entry, i, cont, first,
                                     b"".join(data[first : last + 1]), sizes, target,
                                     (320, 180))
        if back is not None:
            dropped = kept.put(back)  # code without close_all deleted them in there
            evicted += len(dropped or ())
            await let_go(dropped)
        if n + 1 == next_shutdown:
            shutdowns += 1
            await let_go(kept.take_all() if hasattr(kept, "take_all") else None)
            kept = thumbnail.Decoders()
            next_shutdown += rng.randrange(2, 9)
    await let_go(kept.take_all() if hasattr(kept, "take_all") else None)
    return f"decoders: {count} renders, {evicted} evicted, {shutdowns} shutdowns"


async def app(r: Recorded, count: int) -> str:
    listed = r.env.db.list_recordings_by_time(r.stream_id, 0, 2**62)
    recs: list[ListedRecording] = [listed[j % len(listed)] for j in range(3)]
    rng = random.Random(14)
    url = f"/api/cameras/{r.camera_uuid}/main/thumb.jpg"
    at = [rec.start_time_90k for rec in recs]
    renders = continued = shutdowns = asked = 0
    while asked < count:
        ctx = web_context(r)
        thumbs = ctx.thumbnails = Thumbnails()
        test_client = create_app(ctx).test_client()
        for _ in range(min(rng.randrange(1, 5), count - asked)):
            i = rng.choices(range(3), (9, 9, 2))[0]
            at[i] += rng.randrange(1, 6) * FRAME
            if at[i] >= recs[i].end_time_90k or rng.random() < 0.05:
                at[i] = rng.randrange(recs[i].start_time_90k, recs[i].end_time_90k)
            resp = await test_client.get(url, query_string={"time90k": str(at[i])})
            assert resp.status_code == 200, resp.status_code
            asked += 1
        if hasattr(thumbs, "aclose"):
            await thumbs.aclose()
        else:
            thumbs.decoders = thumbnail.Decoders()
        renders += thumbs.stats.renders
        continued += thumbs.stats.continued
        shutdowns += 1
        del thumbs, ctx, test_client
        gc.collect()  # on the trio thread: anything left now is freed here
    return f"app: {count} requests, {renders} renders, {continued} continued, {shutdowns} shutdowns"


def main() -> None:
    faulthandler.dump_traceback_later(DUMP_AFTER_SEC, exit=True)
    root, count = Path(sys.argv[1]), int(sys.argv[2])
    print(trio.run(dropped, count // 2), flush=True)
    print(trio.run(decoders, count), flush=True)
    r = trio.run(record, root, SECONDS, CLIP, clock=trio.testing.MockClock(autojump_threshold=0))
    try:
        print(trio.run(app, r, count // 2), flush=True)
    finally:
        r.env.close()


if __name__ == "__main__":
    main()
