"""Benchmark of the ``video_index`` codec: ``python -m tests.bench.bench_video_index``.

Builds the index of a 1080p30 camera (GOP 30, key frames ~150 kB, others ~15 kB, frame
durations 3000 ± jitter) for one hour and for 24 hours, and prints frames/s of the
incremental encoder, the pure-Python decoder and the numpy decoder, plus the numpy decoder's
time as a ratio against a peer measured in the same run: a fixed-width table (9 bytes per
frame, ``struct`` layout ``<IIB``) decoded with ``numpy.frombuffer`` into the same arrays.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from nvr.db.recording import VideoIndexEncoder, decode_video_index, iter_video_index

FPS = 30
GOP = 30
Frames = tuple[list[int], list[int], list[bool]]
FIXED_WIDTH = np.dtype([("duration", "<u4"), ("bytes", "<u4"), ("is_key", "u1")])


def camera_frames(hours: float, seed: int = 1) -> Frames:
    """Durations, sizes and key flags of a realistic 1080p30 H.264 stream."""
    rng = np.random.default_rng(seed)
    n = round(hours * 3600 * FPS)
    is_key = np.arange(n) % GOP == 0
    durations = 3000 + rng.integers(-30, 31, n)
    sizes = np.where(is_key, rng.normal(150_000, 10_000, n), rng.normal(15_000, 3_000, n))
    sizes = np.clip(sizes, 500, None).astype(np.int64)
    return durations.tolist(), sizes.tolist(), is_key.tolist()


def encode(frames: Frames) -> bytes:
    encoder = VideoIndexEncoder()
    for duration, size, is_key in zip(*frames, strict=True):
        encoder.add(duration, size, is_key)
    return encoder.data


def fixed_width_table(frames: Frames) -> bytes:
    pack = struct.Struct("<IIB").pack
    return b"".join(pack(d, s, k) for d, s, k in zip(*frames, strict=True))


def decode_fixed_width(table: bytes) -> tuple[npt.NDArray[np.generic], ...]:
    """The peer: the same arrays as ``decode_video_index`` from a fixed-width table."""
    rows = np.frombuffer(table, dtype=FIXED_WIDTH)
    durations = rows["duration"].astype(np.int64)
    sizes = rows["bytes"].astype(np.int64)
    is_key = rows["is_key"].astype(np.bool_)
    starts = np.cumsum(durations) - durations
    offsets = np.cumsum(sizes) - sizes
    return durations, sizes, is_key, starts, offsets


def best_seconds(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - began)
    return best


def run(label: str, hours: float, repeats: int) -> None:
    frames = camera_frames(hours)
    n = len(frames[0])
    data = encode(frames)
    table = fixed_width_table(frames)
    arrays = decode_video_index(data)
    peer = decode_fixed_width(table)
    ours = (arrays.durations, arrays.sizes, arrays.is_key, arrays.starts, arrays.offsets)
    assert all(np.array_equal(a, b) for a, b in zip(peer, ours, strict=True))

    encode_s = best_seconds(lambda: encode(frames), 1)
    python_s = best_seconds(lambda: sum(1 for _ in iter_video_index(data)), 1)
    numpy_s = best_seconds(lambda: decode_video_index(data), repeats)
    fixed_s = best_seconds(lambda: decode_fixed_width(table), repeats)
    print(f"{label}: {n} frames, index {len(data)} bytes = {len(data) / n:.2f} bytes/frame")
    print(f"  encode (incremental)  {n / encode_s:14,.0f} frames/s  {encode_s * 1e3:9.1f} ms")
    print(f"  decode pure Python    {n / python_s:14,.0f} frames/s  {python_s * 1e3:9.1f} ms")
    print(f"  decode numpy          {n / numpy_s:14,.0f} frames/s  {numpy_s * 1e3:9.1f} ms")
    print(f"  peer: fixed 9 B/frame {n / fixed_s:14,.0f} frames/s  {fixed_s * 1e3:9.1f} ms")
    print(f"  numpy varint decode / fixed-width decode: {numpy_s / fixed_s:.2f}x the time")


def main() -> None:
    run("1 hour", 1, repeats=20)
    run("24 hours", 24, repeats=5)


if __name__ == "__main__":
    main()
