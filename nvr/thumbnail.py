"""Still pictures from recordings: which frame a thumbnail shows, and its JPEG.

Here belongs the picture work of ``GET .../thumb.jpg`` (docs/api.md, "Extensions";
docs/design.md, "Web and API"), apart from HTTP: ``pick`` chooses, from a recording's
decoded index, the frame covering a media offset (or the key frame at or before it) and
the frames that must be decoded to show it (from the preceding key frame); ``picture_size``
fits a requested width to the picture's display aspect; ``render`` decodes those frames'
bytes with PyAV and encodes the last one as a JPEG. ``render`` blocks (tens of
milliseconds for a 1080p group of pictures): callers in trio run it through
``nvr.base.blocking.run_blocking``. Not here: finding the recording, reading sample files
(``nvr.storage``'s reader), caching, HTTP (``nvr.web.thumb``).

Neighbouring requests (a pointer moving forward along a timeline, search results in a
row) need not start again at the key frame: ``render_continuing`` leaves the decoder it
used part-way through the recording (a ``Continuation``: frames fed so far, the last
picture handed out) and ``Decoders`` keeps the few most recently used, so the next
picture of the same recording at or after it costs only the frames between. Decoding is
deterministic, so a continued decoder hands out exactly the picture a fresh one would
(the tests compare the bytes). Decoders run on ``FRAME_THREADS`` frame threads; such a
decoder hands a frame out only once the next one is fed, so it is fed ``LOOKAHEAD``
frames past the target rather than drained (a drained decoder cannot go on).

A frame-threaded decoder is freed safely, never by the garbage collector at a random
point: every packet it is fed owns a copy of its bytes in FFmpeg's memory (``_packet``;
a packet made straight from Python bytes is freed through a callback that takes the GIL,
and a frame thread drops its packet when done with it, so a decoder freed while a frame
thread was still working, which PyAV does holding the GIL, waited for a thread that
waited for the GIL: a hang for ever in ``avcodec_free_context``, seen on the trio thread),
and a kept decoder is let go only by ``Continuation.close`` on a worker thread, which
drains it first (its threads idle) and drops the last reference there. ``Decoders``
hands back what it evicts, for its owner to close so.

JPEGs come from FFmpeg's ``mjpeg`` encoder through PyAV (already a dependency; it encodes
the decoder's YUV directly, without the RGB round trip an image library would need), at a
fixed quantizer (``JPEG_QSCALE``), scaled with swscale's area filter. Recordings hold no
B-frames (their index has no composition offsets), so decode order is display order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
import av.error
import numpy as np

from nvr.base.errors import DataLoss, InvalidArgument, NotFound
from nvr.base.time90k import Duration
from nvr.db.recording import VideoIndexArrays, VideoSampleEntry

#: a request may decode at most this many frames (a key frame and the frames after it);
#: a frame further from its key frame is shown by its key frame (``Pick.exact`` is False)
MAX_DECODE_FRAMES = 300
#: ... and at most this many bytes of them
MAX_DECODE_BYTES = 32 << 20
#: the widest thumbnail a request may ask for (the largest picture side nvr records)
MAX_WIDTH = 16_384
#: FFmpeg's mjpeg quantizer (2 best .. 31 worst): 5 keeps a 1080p picture near 100 kB
JPEG_QSCALE = 5
#: changes whenever the bytes ``render`` makes for the same frame and size change (it is
#: part of every ETag)
RENDER_VERSION = 1

_DECODERS = {b"avcC": "h264", b"hvcC": "hevc"}
#: a run of frames decodes ~1.5x faster on two frame threads (bench_thumbnail); safe to
#: free only as the module docstring says ...
FRAME_THREADS = 2
#: ... which hand a frame out once the next is fed: frames fed past the target
LOOKAHEAD = FRAME_THREADS - 1
#: decoders ``Decoders`` keeps (each holds a few decoded pictures: ~10-40 MB at 1080p)
MAX_DECODERS = 2


@dataclass(frozen=True, slots=True)
class Pick:
    """The frame a thumbnail shows (``target``, an index into the recording's frames),
    the key frame decoding starts at (``key``), and where their bytes are: the frames
    ``[key, target]`` are ``length`` bytes from ``offset`` of the sample file."""

    key: int
    target: int
    #: the target's start, in media time from the recording's start
    start_90k: Duration
    offset: int
    length: int
    sizes: tuple[int, ...]
    #: True: the target covers the requested offset; False: it is the key frame at or
    #: before it (asked for, or the covering frame is too far from its key frame)
    exact: bool
    #: a digest of the target frame's identity: its index, key frame, offset and sizes
    digest: str

    @property
    def is_key(self) -> bool:
        return self.key == self.target


def pick(index: VideoIndexArrays, media_offset: Duration, *, key_frame: bool = False,
         max_frames: int = MAX_DECODE_FRAMES, max_bytes: int = MAX_DECODE_BYTES) -> Pick:
    """The frame covering ``media_offset`` (the last one starting at or before it; the
    last frame for an offset past the end), or with ``key_frame`` the key frame at or
    before that one; see ``Pick``. ``DataLoss`` if that key frame alone is over
    ``max_bytes`` (no camera makes such frames: the index is damaged)."""
    frames = index.totals.frames
    if frames == 0:
        raise NotFound("the recording has no frames yet")
    covering = max(0, int(np.searchsorted(index.starts, media_offset, side="right")) - 1)
    keys = np.flatnonzero(index.is_key[: covering + 1])
    key = int(keys[-1]) if len(keys) else 0  # frame 0 is a key frame (the index checks it)
    target = key if key_frame else covering
    end = int(index.offsets[target] + index.sizes[target])
    if target - key + 1 > max_frames or end - int(index.offsets[key]) > max_bytes:
        target, end = key, int(index.offsets[key] + index.sizes[key])
        if index.sizes[key] > max_bytes:
            raise DataLoss(f"key frame {key} has {index.sizes[key]} bytes, over the "
                           f"{max_bytes} a thumbnail may decode")
    sizes = tuple(int(s) for s in index.sizes[key : target + 1])
    offset = int(index.offsets[key])
    h = hashlib.sha256(f"{target} {key} {offset} {sizes}".encode())
    return Pick(key=key, target=target, start_90k=int(index.starts[target]), offset=offset,
                length=end - offset, sizes=sizes, exact=target == covering,
                digest=h.hexdigest()[:24])


def picture_size(entry: VideoSampleEntry, width: int | None) -> tuple[int, int]:
    """The thumbnail's size: ``width`` (at most the picture's own display width; None: that
    width) by the height that keeps the display aspect ratio (pixel aspect applied)."""
    display_w = max(1, entry.width * entry.pasp_h_spacing // max(1, entry.pasp_v_spacing))
    w = display_w if width is None else min(width, display_w)
    if w < 1:
        raise InvalidArgument(f"width must be between 1 and {MAX_WIDTH}")
    h = max(1, round(w * entry.height / display_w))
    return w, h


def render(entry: VideoSampleEntry, data: bytes, sizes: tuple[int, ...],
           size: tuple[int, int]) -> bytes:
    """Decodes ``data`` (the frames of ``sizes``, starting with a key frame, as stored:
    length-prefixed NAL units) and returns the last frame as a JPEG of ``size``. Raises
    ``DataLoss`` when the frames do not decode into that picture."""
    codec = _DECODERS.get(entry.codec_box_type)
    if codec is None:
        raise DataLoss(f"no decoder for sample entry type {entry.codec_box_type!r}")
    if len(data) != sum(sizes):
        raise DataLoss(f"read {len(data)} bytes of frames, expected {sum(sizes)}")
    try:
        picture = _decode_last(codec, entry.data[8:], data, sizes)
        return _encode_jpeg(picture, size)
    except av.error.FFmpegError as e:
        raise DataLoss(f"the frames do not decode: {e}") from e


def _new_decoder(entry: VideoSampleEntry, threads: int) -> av.VideoCodecContext:
    codec = _DECODERS.get(entry.codec_box_type)
    if codec is None:
        raise DataLoss(f"no decoder for sample entry type {entry.codec_box_type!r}")
    decoder = av.CodecContext.create(codec, "r")
    assert isinstance(decoder, av.VideoCodecContext)
    decoder.extradata = entry.data[8:]
    decoder.thread_count = threads
    decoder.thread_type = "FRAME"
    return decoder


def _packet(data: bytes, pos: int, n: int, pts: int) -> av.Packet[Any]:
    """Frame bytes ``data[pos:pos + n]`` as a packet owning a copy of them in FFmpeg's
    memory, so the frame thread that drops it never needs the GIL (module docstring)."""
    packet = av.Packet(n)
    packet.update(data[pos : pos + n])
    packet.pts = pts
    return packet


def _drain(decoder: av.VideoCodecContext) -> av.VideoFrame | None:
    """Sends the end of the stream and returns the last frame that comes out (None: none
    did, or the decoder failed on the way); after it the decoder's threads are idle."""
    last = None
    try:
        for frame in decoder.decode(None):
            last = frame
    except av.error.FFmpegError:
        return None
    return last


def _decode_last(codec: str, extradata: bytes, data: bytes,
                 sizes: tuple[int, ...]) -> av.VideoFrame:
    decoder = av.CodecContext.create(codec, "r")
    assert isinstance(decoder, av.VideoCodecContext)
    decoder.extradata = extradata
    # A single frame gains nothing from threads
    decoder.thread_count = 1 if len(sizes) == 1 else FRAME_THREADS
    decoder.thread_type = "FRAME"
    last: av.VideoFrame | None = None
    drained = False
    try:
        pos = 0
        for i, n in enumerate(sizes):
            for frame in decoder.decode(_packet(data, pos, n, i)):
                last = frame
            pos += n
        drained = True
        for frame in decoder.decode(None):
            last = frame
    finally:
        if not drained:  # failed part-way: idle its threads before it is freed here
            _drain(decoder)
    if last is None or last.pts != len(sizes) - 1:
        raise DataLoss(f"frame {len(sizes) - 1} after its key frame did not decode")
    return last


def _encode_jpeg(picture: av.VideoFrame, size: tuple[int, int]) -> bytes:
    width, height = size
    scaled = picture.reformat(width=width, height=height, format="yuvj420p",
                              interpolation="AREA")
    encoder = av.CodecContext.create("mjpeg", "w")
    assert isinstance(encoder, av.VideoCodecContext)
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuvj420p"
    encoder.time_base = Fraction(1, 1)
    encoder.qmin = encoder.qmax = JPEG_QSCALE
    packets = [*encoder.encode(scaled), *encoder.encode(None)]
    return b"".join(bytes(p) for p in packets)


@dataclass(eq=False)
class Continuation:
    """A decoder part-way through one recording (``source``: anything naming the bytes,
    such as its composite id, open and sample entry): fed its frames from a key frame up
    to ``fed``; ``picture`` is the last one it handed out, frame ``shown``. Let go of only
    through ``close``, on a worker thread (module docstring)."""

    source: object
    #: None once closed
    decoder: av.VideoCodecContext | None
    fed: int
    shown: int = -1
    picture: av.VideoFrame | None = None

    def reaches(self, source: object, key: int, target: int) -> bool:
        """Whether it can show frame ``target`` (whose key frame is ``key``) feeding no
        more frames than a new decoder would."""
        return (self.decoder is not None and source == self.source
                and self.shown <= target and self.fed + 1 >= key)

    def close(self) -> None:
        """Drains the decoder and frees it, here: blocks while its frame threads finish,
        so call it on a worker thread. Idempotent; the continuation cannot go on after."""
        decoder, self.decoder, self.picture = self.decoder, None, None
        if decoder is not None:
            _drain(decoder)
            del decoder  # the last reference: freed now, on this thread, its threads idle


def close_all(conts: list[Continuation]) -> None:
    """``Continuation.close`` of each (on a worker thread)."""
    for cont in conts:
        cont.close()


@dataclass
class Decoders:
    """The ``max_decoders`` continuations used last (see the module docstring). One is
    taken out while a render uses it, so two renders never share a decoder. It frees
    none itself: what ``put`` evicts and ``take_all`` returns, the caller closes on a
    worker thread (``close_all``)."""

    max_decoders: int = MAX_DECODERS
    _kept: list[Continuation] = field(default_factory=list)  # least recently used first

    def __len__(self) -> int:
        return len(self._kept)

    def take(self, source: object, key: int, target: int) -> Continuation | None:
        for i in range(len(self._kept) - 1, -1, -1):
            if self._kept[i].reaches(source, key, target):
                return self._kept.pop(i)
        return None

    def put(self, cont: Continuation) -> list[Continuation]:
        """Keeps ``cont`` as the most recently used; returns those it evicts."""
        self._kept.append(cont)
        evicted = self._kept[: max(0, len(self._kept) - self.max_decoders)]
        del self._kept[: len(evicted)]
        return evicted

    def take_all(self) -> list[Continuation]:
        kept, self._kept = self._kept, []
        return kept


def render_continuing(entry: VideoSampleEntry, source: object, cont: Continuation | None,
                      first: int, data: bytes, sizes: tuple[int, ...], target: int,
                      size: tuple[int, int]) -> tuple[bytes, Continuation | None]:
    """The JPEG of frame ``target`` (of ``size``), feeding frames ``first``,
    ``first + 1``... (``sizes``; their bytes ``data``) to ``cont``'s decoder, or without
    one to a new decoder (``first`` is then a key frame). Returns it and the continuation
    to keep (None when the decoder had to be drained to hand the target out). A decoder
    not kept (drained, or on any error) is closed here. Raises ``DataLoss`` when the
    frames do not decode into that picture."""
    if cont is not None and (first != cont.fed + 1 or cont.decoder is None):
        fed = cont.fed if cont.decoder is not None else "closed"
        cont.close()
        raise ValueError(f"frames from {first} fed to a decoder fed up to {fed}")
    if len(data) != sum(sizes):
        if cont is not None:
            cont.close()
        raise DataLoss(f"read {len(data)} bytes of frames, expected {sum(sizes)}")
    if cont is None:
        cont = Continuation(source, _new_decoder(entry, FRAME_THREADS), first - 1)
    decoder = cont.decoder
    assert decoder is not None
    seen = cont.picture if cont.shown == target else None
    kept: Continuation | None = None
    try:
        pos = 0
        for i, n in enumerate(sizes):
            for frame in decoder.decode(_packet(data, pos, n, first + i)):
                if frame.pts is not None:
                    cont.shown, cont.picture = frame.pts, frame
                    seen = frame if frame.pts == target else seen
            pos += n
            cont.fed = first + i
        if seen is None:  # not handed out yet (the recording's last frame, say): drain
            for frame in decoder.decode(None):
                seen = frame if frame.pts == target else seen
        else:
            kept = cont
        if seen is None:
            raise DataLoss(f"frame {target} did not decode")
        return _encode_jpeg(seen, size), kept
    except av.error.FFmpegError as e:
        raise DataLoss(f"the frames do not decode: {e}") from e
    finally:
        del decoder
        if kept is None:
            cont.close()
