"""What a source of frames looks like to the streamer.

A ``Source`` is one open session with a camera (one RTSP session = one run). It yields
``Packet`` batches; each packet is one video frame, already in the form nvr stores:
length-prefixed (4-byte big-endian) NAL units, the payload of an ``.mp4`` ``mdat``.
The real implementation is ``nvr.ingest.pyav_source``; tests use
``nvr.testing.replay.ReplayOpener``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import quote

from nvr.base.time90k import Duration
from nvr.codec.nal import FrameBytes
from nvr.db.recording import VideoSampleEntry


@dataclass(slots=True)
class Packet:
    """One video frame.

    ``pts`` is in 90 kHz units on the camera's clock (arbitrary origin, may wrap or jump;
    the streamer judges it). A source never yields a packet without a pts: the first
    packet after connecting, which PyAV gives without one, is fixed up or dropped by the
    source (docs/design.md, "Recording, syncing and retention"). ``sample_entry`` is shared by
    identity between consecutive packets until the parameter sets change.
    """

    data: FrameBytes
    pts: int
    is_key: bool
    sample_entry: VideoSampleEntry
    #: ``nvr.base.clock.instrumentation_stamp()`` when the source read it (0: unknown).
    #: Instrumentation only (live-view latency); nvr's logic reads time through ``Clocks``.
    received: float = 0.0


@dataclass(frozen=True, slots=True)
class OpenOptions:
    """How to open a source. Credentials are kept apart from the URL so the URL can be
    logged; ``password`` must never appear in a log line or an error message."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    rtsp_transport: str = "tcp"
    #: a camera that sends no frame for this long is disconnected (``Unavailable``)
    read_timeout: Duration = 10 * 90_000
    #: connecting (the whole RTSP handshake) may take this long; the caller gives up then
    #: and the source's own interrupt ends the attempt soon after (``nvr.ingest.demuxer``)
    connect_timeout: Duration = 20 * 90_000
    #: for local files: pace packets at their timestamps (the demo); otherwise as fast as read
    realtime: bool = False
    #: for local files: start again at the end (the demo camera never ends)
    loop: bool = False


def scrub_userinfo(text: str, password: str | None = None) -> str:
    """``text`` with the userinfo of any URL removed, and ``password`` (plain or
    percent-encoded) masked wherever else it appears."""
    text = re.sub(r"(?<=//)[^/@\s'\"]*@", "", text)
    if password:
        for form in {password, quote(password, safe="")}:
            text = text.replace(form, "***")
    return text


class Source(Protocol):
    #: set by the streamer while someone watches live: hand over every frame as soon as
    #: it is read instead of gathering batches (more wake-ups, less latency)
    low_latency: bool

    async def next_batch(self) -> list[Packet]:
        """Waits for one or more packets, in order. Returns ``[]`` at end of stream (a
        camera that hung up: a disconnect). Raises ``nvr.base.errors.NvrError`` subclasses:
        ``Unavailable`` for a stall/timeout or a network error, ``DataLoss`` for undecodable
        input, ``Unauthenticated`` for rejected credentials."""
        ...

    async def drain(self, grace: Duration) -> list[Packet]:
        """At shutdown, after ``next_batch`` was cancelled: the packets received but not
        yet returned (the batch being gathered), waiting at most ``grace`` (90k units) for
        the packet being read. Afterwards only ``aclose`` may be called."""
        ...

    async def aclose(self) -> None: ...


class Opener(Protocol):
    async def open(self, url: str, options: OpenOptions) -> Source:
        """Connects. Raises ``NvrError`` subclasses as ``Source.next_batch`` does."""
        ...
