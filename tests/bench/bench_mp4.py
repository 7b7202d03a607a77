"""Benchmark of virtual ``.mp4`` building and range serving: ``python -m tests.bench.bench_mp4``.

1. ``moov`` build time for one hour (60 one-minute recordings, 108 000 frames) and 24 hours
   (1 440 recordings, 2.6 M frames) of a 1080p30 camera (GOP 30, jittered durations so
   ``stts`` barely compresses: the worst case): ``build_mp4`` from decoded indexes, the
   index decoding before it, and in the same run a peer, the same sample tables packed by
   a plain Python loop (``struct.pack`` per frame), printed as a ratio.
2. Range assembly throughput: a 1 GiB-ish file of recordings in a temporary directory,
   read whole through ``VirtualFile.read`` with a ``pread`` reader in 1 MiB chunks, against
   the peer of ``pread``-ing the same files directly in 1 MiB chunks in the same run.
"""

from __future__ import annotations

import functools
import os
import struct
import tempfile
import time
from collections.abc import Callable

import numpy as np
import trio

from nvr.db.recording import VideoIndexArrays, VideoIndexEncoder, decode_video_index
from nvr.db.types import ListedRecording
from nvr.mp4.movie import build_mp4
from nvr.mp4.selection import Segment
from nvr.testing.env import TEST_SAMPLE_ENTRY

FPS, GOP, MINUTE_FRAMES = 30, 30, 1800


def minute_index(rng: np.random.Generator, frames: int = MINUTE_FRAMES) -> bytes:
    is_key = np.arange(frames) % GOP == 0
    durations = 3000 + rng.integers(-30, 31, frames)
    sizes = np.where(is_key, rng.normal(150_000, 10_000, frames),
                     rng.normal(15_000, 3_000, frames))
    sizes = np.clip(sizes, 500, None).astype(np.int64)
    enc = VideoIndexEncoder()
    for d, s, k in zip(durations.tolist(), sizes.tolist(), is_key.tolist(), strict=True):
        enc.add(d, s, k)
    return enc.data


def recordings(n: int, indexes: list[bytes]) -> list[tuple[ListedRecording, bytes]]:
    out, start = [], 1_700_000_000 * 90_000
    for i in range(n):
        data = indexes[i % len(indexes)]
        totals = decode_video_index(data).totals
        rec = ListedRecording(1 << 32 | i, 1, start, totals.media_duration_90k,
                              totals.media_duration_90k, totals.frames, totals.key_frames, 1,
                              totals.bytes, i, 0, 0, 0)
        start += totals.media_duration_90k
        out.append((rec, data))
    return out


def decode_all(recs: list[tuple[ListedRecording, bytes]]) -> list[VideoIndexArrays]:
    return [decode_video_index(d) for _, d in recs]


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def naive_tables(arrays: list[VideoIndexArrays]) -> bytes:
    """The peer: stts/stsz/stss packed frame by frame in Python."""
    out, pack, frame = bytearray(), struct.Struct(">I").pack, 0
    prev, run = 0, 0
    for a in arrays:
        for d, s, k in zip(a.durations.tolist(), a.sizes.tolist(), a.is_key.tolist(),
                           strict=True):
            frame += 1
            out += pack(s)
            if k:
                out += pack(frame)
            if d == prev:
                run += 1
            else:
                out += pack(run) + pack(prev)
                prev, run = d, 1
    return bytes(out)


def bench_moov() -> None:
    rng = np.random.default_rng(1)
    pool = [minute_index(rng) for _ in range(8)]
    for label, n in (("1 hour", 60), ("24 hours", 1440)):
        recs = recordings(n, pool)
        t_decode = best_of(3, functools.partial(decode_all, recs))
        segs = [Segment(r, decode_video_index(d), 7_000 if i == 0 else 0, 1 << 40)
                for i, (r, d) in enumerate(recs)]
        t_build = best_of(5, functools.partial(build_mp4, segs, {1: TEST_SAMPLE_ENTRY}))
        vf = build_mp4(segs, {1: TEST_SAMPLE_ENTRY})
        t_peer = best_of(1, functools.partial(naive_tables, [s.index for s in segs]))
        frames = sum(r.video_samples for r, _ in recs)
        print(f"{label}: {n} recordings, {frames} frames, header {len(vf.header)} B, "
              f"file {vf.size / 2**30:.1f} GiB")
        print(f"  decode indexes {t_decode * 1e3:8.1f} ms")
        print(f"  build_mp4      {t_build * 1e3:8.1f} ms   (decode + build "
              f"{(t_decode + t_build) * 1e3:.1f} ms)")
        print(f"  peer: python-loop tables {t_peer * 1e3:8.1f} ms   ratio peer/build "
              f"{t_peer / t_build:.1f}x")


def bench_ranges() -> None:
    rng = np.random.default_rng(2)
    with tempfile.TemporaryDirectory() as tmp:
        recs = recordings(40, [minute_index(rng)])  # ~40 x 27 MB
        chunk = os.urandom(1 << 20)
        paths = {}
        for rec, _ in recs:
            path = os.path.join(tmp, f"{rec.composite_id:016x}")
            with open(path, "wb") as f:
                left = rec.sample_file_bytes
                while left > 0:
                    f.write(chunk[: min(left, len(chunk))])
                    left -= len(chunk)
            paths[rec.composite_id] = path
        fds = {cid: os.open(p, os.O_RDONLY) for cid, p in paths.items()}
        try:
            segs = [Segment(r, decode_video_index(d), 0, 1 << 40) for r, d in recs]
            vf = build_mp4(segs, {1: TEST_SAMPLE_ENTRY})

            async def reader(cid: int, offset: int, length: int) -> bytes:
                return os.pread(fds[cid], length, offset)

            async def serve() -> int:
                return sum([len(c) async for c in vf.read(0, vf.size, reader)])

            def peer() -> int:
                total = 0
                for rec, _ in recs:
                    fd, off = fds[rec.composite_id], 0
                    while off < rec.sample_file_bytes:
                        total += len(os.pread(fd, min(1 << 20, rec.sample_file_bytes - off), off))
                        off += 1 << 20
                return total

            peer()  # warm the page cache
            t_serve = best_of(3, lambda: trio.run(serve))
            t_peer = best_of(3, peer)
            print(f"range assembly: {vf.size / 2**20:.0f} MiB whole file in 1 MiB chunks")
            print(f"  VirtualFile.read {vf.size / t_serve / 2**30:6.2f} GiB/s")
            print(f"  peer: plain pread {vf.size / t_peer / 2**30:6.2f} GiB/s   "
                  f"ratio read/peer {t_peer / t_serve:.2f}")
        finally:
            for fd in fds.values():
                os.close(fd)


if __name__ == "__main__":
    bench_moov()
    bench_ranges()
