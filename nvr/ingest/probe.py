"""Trying a camera URL before it is configured: open it, wait for a key frame, measure
the frame rate, close (the settings page's "test" button, ``nvr.web.camera_test``).

``probe`` opens the URL through the daemon's ``Opener`` (the same code that records, so
a test fails exactly as recording would), reads until the first key frame, then on until
``RATE_SPAN`` of media time or ``RATE_FRAMES`` frames for the frame rate, all before
``deadline`` (a ``Clocks`` monotonic time); it always closes the session. What it
returns is the key frame (to be decoded into a snapshot by the caller) with its sample
entry. Errors are the opener's ``NvrError`` kinds, whose messages carry the URL without
credentials; running out of time is ``Unavailable`` saying what was still missing. Not
here: decoding, HTTP, who may probe and how many at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import trio

from nvr.base.clock import Clocks
from nvr.base.errors import Unavailable
from nvr.base.time90k import UNITS_PER_SEC, Duration, format_duration
from nvr.ingest.source import Opener, OpenOptions, Packet, scrub_userinfo

#: how much media time after the key frame the frame rate is measured over
RATE_SPAN: Duration = UNITS_PER_SEC
#: ... or how many frames, whichever comes first
RATE_FRAMES = 60


@dataclass(frozen=True, slots=True)
class Probe:
    """What a probe saw: the first key frame and the frame rate measured after it (None
    when fewer than two frames came in time)."""

    key_frame: Packet
    frame_rate: float | None
    frames: int


def _rate(frames: list[Packet]) -> float | None:
    if len(frames) < 2 or frames[-1].pts <= frames[0].pts:
        return None
    return (len(frames) - 1) * UNITS_PER_SEC / (frames[-1].pts - frames[0].pts)


async def probe(
    opener: Opener, clocks: Clocks, url: str, options: OpenOptions, deadline: Duration
) -> Probe:
    """Opens ``url``, returns its first key frame and frame rate, closes it (see the
    module docstring). Raises the opener's errors, or ``Unavailable`` at ``deadline``."""
    frames: list[Packet] = []
    opened = ended = False
    started = clocks.monotonic()
    with trio.move_on_at(clocks.deadline_at(deadline)):
        source = await opener.open(url, options)
        opened = True
        try:
            while True:
                batch = await source.next_batch()
                if not batch:
                    ended = True  # the camera hung up (or a file ended)
                    break
                for p in batch:
                    if frames or p.is_key:
                        frames.append(p)
                if frames and (
                    len(frames) >= RATE_FRAMES or frames[-1].pts - frames[0].pts >= RATE_SPAN
                ):
                    break
        finally:
            with trio.CancelScope(shield=True):
                await source.aclose()
    if not frames:
        waited = format_duration(clocks.monotonic() - started)
        name = scrub_userinfo(url, options.password)
        if ended:
            raise Unavailable(f"{name}: the stream ended before its first key frame")
        missing = "no key frame" if opened else "not connected"
        raise Unavailable(f"{name}: {missing} within {waited}")
    frames = frames[:RATE_FRAMES]
    return Probe(frames[0], _rate(frames), len(frames))
