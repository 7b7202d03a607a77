"""H.265 (or any recorded codec) to H.264 for browsers that cannot decode what was
recorded: decode with PyAV, scale to fit ``Settings.max_height``, encode with libx264.

Here belongs the picture work of a transcoded ``view.mp4``/``view.m4s``/``live.m4s``
(docs/api.md, "Extensions", Transcoding; docs/design.md, "Web and API"), apart from HTTP
and trio: ``Transcoder`` turns stored frames (length-prefixed NAL units, as in a sample
file or a live frame) into H.264 frames of the same timing, one out for each in, and
gives the ``avcC`` sample entry they need. ``Worker`` is the one thread a transcode runs
on, at a lowered CPU priority. Not here: reading sample files, the concurrency limit,
``.mp4`` boxes, HTTP (``nvr.web.transcoding``).

Choices, and why:

- **libx264 ``veryfast``, ``tune=zerolatency``**: no B-frames (nvr's fragments carry no
  composition offsets, and cameras send none either), no look-ahead (live latency: every
  frame leaves the encoder as it goes in), CRF 23. Every input key frame becomes an IDR
  (so a viewer can start, and a corrupt stretch ends, where the recording's key frames
  are), no other key frames (``scenecut`` off) except every ``MAX_GOP`` frames.
- **One output frame per input frame**, each with its input's media start and duration, so
  a transcoded file or live message has the very timing of the recorded one. A frame
  that does not decode (damaged data) starts a skip to the next key frame; the frames
  skipped show the last good picture again (an encoder codes a repeated picture in a few
  bytes), so the timeline has no holes; before any good picture there is nothing to
  repeat and they are left out (``skipped`` counts them).
- **Decoding on one thread** (``thread_count=1``): output order is input order with no
  delay, and the per-frame CPU is lowest; the encoder uses libx264's slice threads.
- **Priority**: ``Worker``'s thread (and the codec threads it starts, which inherit it)
  runs at ``nice`` ``Settings.nice`` (default 10): when the machine is busy, the
  recording threads (camera readers, file writes, the event loop) are scheduled first
  and the transcode slows down (live transcodes then drop frames at the frame hub;
  ``nvr.ingest.hub``).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import itertools
import os
import resource
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TypeVar

import av
import av.error

from nvr.base.errors import DataLoss, InvalidArgument
from nvr.codec import h264, nal
from nvr.db.recording import VideoSampleEntry

T = TypeVar("T")

#: changes whenever the bytes a transcode makes of the same frames change (part of every
#: transcoded file's ETag)
TRANSCODE_VERSION = 1
#: a key frame at least this often, even when the input has none for longer
MAX_GOP = 600
_DECODERS = {b"avcC": "h264", b"hvcC": "hevc"}
_AV_CODEC_FLAG_GLOBAL_HEADER = 1 << 22
_NAL_SPS, _NAL_PPS = 7, 8
_PR_SET_NAME = 15
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: a worker reports its CPU time when its own thread has used this much more (reading it
#: costs a few ``/proc`` reads: not for every live frame)
CPU_REPORT_SEC = 0.25


@dataclass(frozen=True, slots=True)
class Settings:
    """How transcodes are made (``[transcode]`` in the daemon's TOML, see nvr.config)."""

    #: the output's height at most (smaller pictures keep their size); width follows the
    #: display aspect ratio, both rounded to even numbers
    max_height: int = 720
    #: libx264's constant rate factor (lower: better and larger)
    crf: int = 23
    preset: str = "veryfast"
    #: the niceness of the transcode threads (0: as recording; 19: the lowest priority)
    nice: int = 10

    def describe(self) -> str:
        return f"h264-{self.max_height}p-crf{self.crf}-{self.preset}-v{TRANSCODE_VERSION}"


@dataclass(frozen=True, slots=True)
class OutFrame:
    """One H.264 frame: length-prefixed NAL units (no parameter sets: they are in the
    sample entry), its media start and duration (90 kHz) as the input frame's."""

    data: bytes
    is_key: bool
    start: int
    duration: int


def output_size(entry: VideoSampleEntry, max_height: int) -> tuple[int, int]:
    """The transcoded picture's size: the display size (pixel aspect applied) scaled down
    to ``max_height`` if taller, both sides even (4:2:0 needs it)."""
    display_w = entry.width * entry.pasp_h_spacing / max(1, entry.pasp_v_spacing)
    h = min(entry.height, max_height)
    w = display_w * h / entry.height
    return max(2, round(w / 2) * 2), max(2, round(h / 2) * 2)


class Transcoder:
    """Frames of one sample entry in, H.264 frames out (see the module docstring). Blocks:
    call it on a ``Worker``. Not thread-safe; one per transcode."""

    def __init__(self, entry: VideoSampleEntry, settings: Settings) -> None:
        codec = _DECODERS.get(entry.codec_box_type)
        if codec is None:
            raise InvalidArgument(f"cannot transcode sample entry type {entry.codec_box_type!r}")
        self.source = entry
        self.settings = settings
        self.size = output_size(entry, settings.max_height)
        decoder = av.CodecContext.create(codec, "r")
        assert isinstance(decoder, av.VideoCodecContext)
        decoder.extradata = entry.data[8:]
        decoder.thread_count = 1
        self._decoder: av.VideoCodecContext = decoder
        self._encoder = self._open_encoder()
        self.entry = self._output_entry(bytes(self._encoder.extradata or b""))
        #: frames left out: damaged before any good picture could be shown instead
        self.skipped = 0
        #: frames that showed the last good picture again (damaged, or after damage)
        self.repeated = 0
        self._skipping = False
        self._force_key = False
        self._last: av.VideoFrame | None = None
        self._index = 0
        #: media start -> duration of the frames in the encoder
        self._pending: dict[int, int] = {}

    def _open_encoder(self) -> av.VideoCodecContext:
        enc = av.CodecContext.create("libx264", "w")
        assert isinstance(enc, av.VideoCodecContext)
        enc.width, enc.height = self.size
        enc.pix_fmt = "yuv420p"
        enc.time_base = Fraction(1, 90_000)
        enc.framerate = Fraction(30, 1)  # only for x264's rate control; times are the input's
        enc.flags = int(enc.flags) | _AV_CODEC_FLAG_GLOBAL_HEADER
        enc.gop_size = MAX_GOP
        enc.options = {
            "preset": self.settings.preset,
            "tune": "zerolatency",
            "crf": str(self.settings.crf),
            "forced-idr": "1",
            "x264-params": "scenecut=0:bframes=0:repeat-headers=0",
        }
        try:
            enc.open()
        except av.error.FFmpegError as e:
            raise InvalidArgument(f"cannot open the H.264 encoder: {e}") from e
        return enc

    def _output_entry(self, extradata: bytes) -> VideoSampleEntry:
        nals = nal.split_annex_b(extradata) if nal.is_annex_b(extradata) else []
        sps = [n for n in nals if n[0] & 0x1F == _NAL_SPS]
        pps = [n for n in nals if n[0] & 0x1F == _NAL_PPS]
        if not sps or not pps:
            raise DataLoss("the H.264 encoder gave no parameter sets")
        return h264.sample_entry(sps[0], pps[0])

    def feed(self, data: bytes, is_key: bool, start: int, duration: int,
             emit: bool = True) -> list[OutFrame]:
        """Transcodes one frame (of the source entry, in decode order); returns the
        frames the encoder has finished (with zerolatency: this one). With ``emit``
        false the frame is only decoded (a frame before the requested start: the first
        emitted frame becomes a key frame)."""
        picture: av.VideoFrame | None = None
        if self._skipping and is_key:
            self._skipping = False
        if not self._skipping:
            try:
                packet = av.Packet(data)
                packet.pts = self._index
                decoded = self._decoder.decode(packet)
                picture = decoded[-1] if decoded else None
                if picture is None:
                    raise DataLoss("no picture")
            except (av.error.FFmpegError, DataLoss):
                self._skipping = True
                picture = None
        self._index += 1
        if not emit:
            if picture is not None:
                self._last = None  # what follows must start at a picture of its own
                self._force_key = True
            return []
        if picture is None:
            if self._last is None:
                self.skipped += 1
                return []
            self.repeated += 1
            scaled = self._last
        else:
            scaled = picture.reformat(width=self.size[0], height=self.size[1],
                                      format="yuv420p", interpolation="BILINEAR")
            self._last = scaled
        out = scaled  # the encoder copies the picture: the same one may go in again
        out.pts = start
        out.time_base = Fraction(1, 90_000)
        key = (is_key or self._force_key) and picture is not None
        self._force_key = self._force_key and not key
        out.pict_type = av.video.frame.PictureType.I if key else av.video.frame.PictureType.NONE
        self._pending[start] = duration
        return self._packets(self._encoder.encode(out))

    def flush(self) -> list[OutFrame]:
        """The frames still in the encoder (none with zerolatency; for completeness)."""
        return self._packets(self._encoder.encode(None))

    def _packets(self, packets: Sequence[av.Packet]) -> list[OutFrame]:  # type: ignore[type-arg]
        out = []
        for p in packets:
            pts = int(p.pts) if p.pts is not None else 0
            duration = self._pending.pop(pts, 0)
            units = [n for n in nal.split_annex_b(bytes(p))
                     if n[0] & 0x1F not in (_NAL_SPS, _NAL_PPS)]
            out.append(OutFrame(nal.to_length_prefixed(units), bool(p.is_keyframe), pts,
                                duration))
        return out


def _start_thread(nice: int, name: bytes) -> None:
    """Runs first on a ``Worker``'s thread: names it (codec threads it starts inherit the
    name, which is how ``Worker`` finds them to count their CPU time) and lowers its
    priority (Linux nice values are per thread, and threads it starts inherit them)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0)
    if nice > 0:
        with contextlib.suppress(OSError):  # never refused for a higher niceness
            # who=0: the calling thread (Linux keeps nice values per thread)
            os.setpriority(os.PRIO_PROCESS, 0,
                           min(19, os.getpriority(os.PRIO_PROCESS, 0) + nice))


def _threads_named(name: bytes) -> list[int]:
    """This process's threads whose name is ``name`` (Linux; none elsewhere)."""
    found = []
    with contextlib.suppress(OSError):
        for tid in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError), open(f"/proc/self/task/{tid}/comm", "rb") as f:
                if f.read().rstrip(b"\n") == name:
                    found.append(int(tid))
    return found


def _thread_cpu() -> float:
    """The calling thread's CPU time (user + system)."""
    r = resource.getrusage(resource.RUSAGE_THREAD)
    return r.ru_utime + r.ru_stime


def _cpu_seconds(tids: Sequence[int]) -> dict[int, float]:
    """The CPU time (user + system) each of the threads ``tids`` used (an ended one: not
    there)."""
    out = {}
    for tid in tids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            with open(f"/proc/self/task/{tid}/stat", "rb") as f:
                stat = f.read()
            fields = stat[stat.rindex(b")") + 2 :].split()
            out[tid] = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime
    return out


class Worker:
    """One thread of its own for one transcode, at lowered priority (see the module
    docstring): ``call`` runs a function there and waits for it (a caller in trio calls it
    through ``run_blocking``, so the waiting happens in a worker thread). ``close`` sets
    ``stopping`` and ends the thread once its current call returns: a call that loops over
    frames looks at ``stopping`` before each one, so a transcode whose viewer left stops
    within one frame.

    CPU time (with ``on_cpu``): the thread and the codec threads it starts (found by the
    thread's name, which they inherit, at the first report after ``transcoder`` opened
    the codecs: not in the way of the first frame) are read from ``/proc`` after a call
    once the thread used ``CPU_REPORT_SEC`` more, and at ``close``; what they used since
    the last report goes to ``on_cpu`` (on the worker's thread). A codec thread's time
    after the last report before it ended is not counted."""

    _names = itertools.count()

    def __init__(self, nice: int, on_cpu: Callable[[float], None] | None = None) -> None:
        self.name = f"nvr-tc-{next(Worker._names) % 100_000}".encode()
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="nvr-transcode",
            initializer=_start_thread, initargs=(nice, self.name))
        #: set by ``close`` (read on the thread: a plain attribute is enough)
        self.stopping = False
        self._on_cpu = on_cpu
        self._tids: list[int] = []
        self._scan = True  # find the threads (again) at the next report
        self._reported: dict[int, float] = {}  # thread -> its CPU time reported
        self._own_at_report = 0.0  # the worker thread's own CPU time then

    def call(self, fn: Callable[..., T], *args: object) -> T:
        return self._pool.submit(self._run, fn, *args).result()

    def _run(self, fn: Callable[..., T], *args: object) -> T:
        try:
            return fn(*args)
        finally:
            if self._on_cpu is not None and _thread_cpu() - self._own_at_report >= CPU_REPORT_SEC:
                self._report()

    def transcoder(self, entry: VideoSampleEntry, settings: Settings) -> Transcoder:
        """A ``Transcoder`` made on this thread (call it through ``call``); its codec
        threads are counted from now on."""
        t = Transcoder(entry, settings)
        self._scan = True
        return t

    def _report(self) -> None:
        if self._on_cpu is None:
            return
        self._own_at_report = _thread_cpu()
        if self._scan:
            self._scan = False
            self._tids = _threads_named(self.name)
        used = 0.0
        for tid, cpu in _cpu_seconds(self._tids).items():
            used += max(0.0, cpu - self._reported.get(tid, 0.0))
            self._reported[tid] = cpu
        if used > 0:
            self._on_cpu(used)

    def close(self) -> None:
        self.stopping = True
        with contextlib.suppress(RuntimeError):  # already shut down
            self._pool.submit(self._report)  # after the current call, on the thread
        self._pool.shutdown(wait=False)
