"""Media routes: ``view.mp4``, ``view.m4s``, ``/api/init/<id>.mp4`` and their ``.txt`` twins.

The ``s=`` grammar (Moonfire NVR's): ``START_ID[-END_ID][@OPEN_ID][.[REL_START]-[REL_END]]``,
repeatable; ids name recordings of the stream, ``@OPEN_ID`` insists they were written by
that open (ids of uncommitted recordings are reused after a crash), and the optional
range is 90k *wall* time relative to the start of ``START_ID``, clipping the segments.

Responses carry a strong ``ETag`` from the exact byte layout, ``Last-Modified``,
``Cache-Control`` (video ``private, no-cache``: kept by the browser but revalidated before
each use, so a redaction committed later is a ``404`` at once; init segments, which show
no video and never change, ``private, max-age=3600``), honour a single ``Range``
(``416`` when unsatisfiable), ``If-Range``, ``If-None-Match`` and, without it,
``If-Modified-Since`` (``304``; not for a growing recording, which changes within the
second its date names), and stream the body in bounded chunks read from the sample files
through ``run_blocking``, so a 2 GB response never holds more than a chunk or two. A
client that goes away stops the reads. The file is laid out by ``nvr.mp4``
from the recordings' rows and stored index summaries (listed by id, which carries them):
only a segment that cuts into its recording, or a growing recording, has its index read
and decoded (through ``run_blocking``) to lay out, and only a layout of many segments
goes to a worker thread; the other indexes stay in the database until a byte range of the
tables needs them.
"""

from __future__ import annotations

import email.utils
import logging
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass

from quart import Blueprint, Response, request

from nvr.archive.reader import ObjectRange, Prefetcher
from nvr.base import errors
from nvr.base.blocking import run_blocking
from nvr.base.time90k import UNITS_PER_SEC, Time, to_datetime
from nvr.db.database import Database
from nvr.db.types import ListedRecording, Stream
from nvr.mp4.fragment import plan_m4s
from nvr.mp4.movie import build_init, plan_mp4
from nvr.mp4.selection import Segment, lazy_segment, wall_to_media
from nvr.mp4.virtual import VirtualFile
from nvr.storage.reader import SampleFile, SampleFileReader
from nvr.web.context import (
    bool_arg,
    camera_by_uuid,
    ctx,
    one_line,
    parse_int,
    stream_of,
    text_response,
)
from nvr.web.transcoding import view_response, wants_transcode

log = logging.getLogger(__name__)
blueprint = Blueprint("view", __name__)

#: bytes read from a sample file per worker-thread call and per send: 4 MiB serves ~20 %
#: faster than 1 MiB (1.5 against 1.25 GB/s over loopback, bench_serve) for two of them
#: held at a time
CHUNK = 4 << 20
#: recording ids are signed 32-bit integers, as in Moonfire's API (a redaction's pieces
#: take those from 2^30 up)
MAX_ID = (1 << 31) - 1
_S_RE = re.compile(
    r"(?P<start>\d+)(?:-(?P<end>\d+))?(?:@(?P<open>\d+))?"
    r"(?:\.(?P<rel_start>\d*)-(?P<rel_end>\d*))?",
    re.ASCII,  # digits are 0-9 only: int() would also take "٣"
)


@dataclass(frozen=True, slots=True)
class SegmentSpec:
    """One ``s=`` value, parsed."""

    start_id: int
    end_id: int  # inclusive
    open_id: int | None
    rel_start: int | None
    rel_end: int | None


def parse_s(text: str) -> SegmentSpec:
    m = _S_RE.fullmatch(text)
    shown = text if len(text) <= 60 else text[:57] + "..."
    if m is None:
        raise errors.InvalidArgument(
            f"bad s={shown!r}: expected START_ID[-END_ID][@OPEN_ID][.[REL_START]-[REL_END]]"
        )
    try:
        start, end, open_id, rel_start, rel_end = (
            parse_int(m[k], k) if m[k] else None
            for k in ("start", "end", "open", "rel_start", "rel_end")
        )
    except errors.InvalidArgument:
        raise errors.InvalidArgument(f"bad s={shown!r}: number out of range") from None
    assert start is not None  # the pattern requires it
    end = start if end is None else end
    ids_ok = start <= MAX_ID and end <= MAX_ID
    if not ids_ok or any(v is not None and v >= 1 << 62 for v in (open_id, rel_start, rel_end)):
        raise errors.InvalidArgument(f"bad s={shown!r}: number out of range")
    if end < start:
        raise errors.InvalidArgument(f"bad s={shown!r}: end id before start id")
    if rel_start is not None and rel_end is not None and rel_end <= rel_start:
        raise errors.InvalidArgument(f"bad s={shown!r}: empty or reversed time range")
    return SegmentSpec(start, end, open_id, rel_start, rel_end)


def resolve(stream: Stream, spec: SegmentSpec) -> list[tuple[ListedRecording, int, int]]:
    """The recordings a spec names, each with its media range ``[start, end)``."""
    db = ctx().db
    recs = db.list_recordings_by_id(stream.id, spec.start_id, spec.end_id + 1)
    found = {r.recording_id for r in recs}
    for rid in range(spec.start_id, spec.end_id + 1):
        if rid not in found:
            raise errors.NotFound(f"recording {rid} of stream {stream.id} does not exist")
    out = []
    wall_pos = 0
    want_start = spec.rel_start or 0
    want_end = spec.rel_end
    for r in sorted(recs, key=lambda r: r.recording_id):
        if spec.open_id is not None and r.open_id != spec.open_id:
            raise errors.NotFound(
                f"recording {r.recording_id} was written by open {r.open_id}, not {spec.open_id}"
            )
        lo, hi = wall_pos, wall_pos + r.wall_duration_90k
        wall_pos = hi
        if hi <= want_start and r.wall_duration_90k > 0:
            continue
        if want_end is not None and lo >= want_end:
            break
        start = wall_to_media(r, max(0, want_start - lo))
        end = (
            r.media_duration_90k
            if want_end is None or want_end >= hi
            else wall_to_media(r, want_end - lo, round_up=True)
        )
        if end > start or r.media_duration_90k == 0:
            out.append((r, start, max(end, start)))
    if not out:
        raise errors.InvalidArgument("the requested time range selects no video")
    return out


def segments_for_request(stream: Stream) -> list[Segment]:
    specs = request.args.getlist("s")
    if not specs:
        raise errors.InvalidArgument("at least one s= parameter is required")
    if len(specs) > 1000:
        raise errors.InvalidArgument("too many s= parameters")
    db = ctx().db
    segments = []
    for text in specs:
        for rec, start, end in resolve(stream, parse_s(text)):
            segments.append(lazy_segment(db, rec, start, end))
    return segments


class SampleReader:
    """Reads sample files for one response, keeping the current file open; archive-only
    recordings (those in ``archived``'s map) through its ``Prefetcher``. It holds what it
    needs itself: the body is read after the request's app context is gone."""

    def __init__(self, db: Database, dirs: Mapping[int, SampleFileReader],
                 archived: Prefetcher | None = None) -> None:
        self._db = db
        self._dirs = dirs
        self._cid = -1
        self._file: SampleFile | None = None
        self._archived = archived

    async def __call__(self, cid: int, offset: int, length: int) -> bytes:
        if self._archived is not None and self._archived.holds(cid):
            return await run_blocking(self._archived.read, cid, offset, length)
        return await run_blocking(self._pread, cid, offset, length)

    def _pread(self, cid: int, offset: int, length: int) -> bytes:
        if self._file is None or cid != self._cid:
            self.close()
            self._file, self._cid = self._dir_of(cid).open_for_reading(cid), cid
        return self._file.pread(offset, length)

    def _dir_of(self, cid: int) -> SampleFileReader:
        stream = self._db.streams.get(cid >> 32)
        dir_id = None if stream is None else stream.sample_file_dir_id
        if dir_id is None or dir_id not in self._dirs:
            raise errors.NotFound(f"recording {cid:016x} has no open sample file directory")
        return self._dirs[dir_id]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file, self._cid = None, -1
        if self._archived is not None:
            self._archived.close()


def archive_sources(recordings: Iterable[ListedRecording]) -> dict[int, tuple[int, str]]:
    """Composite id -> (archive id, object key) of each archive-only recording among
    ``recordings`` (trio thread: asks the database); ``Unavailable`` (503) before any
    header is sent when this server reads none of the archives holding one."""
    cids = sorted({r.composite_id for r in recordings if r.archive_only})
    if not cids:
        return {}
    reads = ctx().archive_reads
    if reads is None:
        raise errors.Unavailable(
            f"recording {cids[0]:016x} is only in an archive and this server reads none"
        )
    return {cid: reads.object_key(ctx().db, cid) for cid in cids}


def archive_plan(vf: VirtualFile, start: int, end: int,
                  sources: Mapping[int, tuple[int, str]]) -> list[ObjectRange]:
    """The object ranges a response of bytes ``[start, end)`` of ``vf`` reads, in order
    (a slice's sample offset follows its file offset; for a slice with parameter sets in
    band the file covers more, so the range may start early: reads outside it are GETs of
    their own)."""
    out = []
    for sl in vf.slices:
        src = sources.get(sl.composite_id)
        if src is None or sl.file_offset >= end:
            continue
        lo = max(0, start - sl.file_offset)
        if lo >= sl.length:
            continue
        hi = min(sl.length, end - sl.file_offset)
        out.append(ObjectRange(sl.composite_id, src[1], sl.sample_offset + lo,
                               sl.sample_offset + hi))
    return out


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """``[start, end)`` of a single-range ``Range`` header, None to send everything.
    Raises ``_Unsatisfiable`` for a range outside the file."""
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header, re.ASCII)
    if m is None or (not m[1] and not m[2]):
        return None  # malformed or multi-range: ignore it, as RFC 9110 allows
    try:
        first = parse_int(m[1], "Range") if m[1] else None
        last = parse_int(m[2], "Range") if m[2] else None
    except errors.InvalidArgument:
        return None  # positions of more digits than any file's size: as malformed
    if first is None:
        assert last is not None
        if last == 0:
            raise _Unsatisfiable
        return max(0, size - last), size
    end = size if last is None else min(size, last + 1)
    if first >= size or end <= first:
        raise _Unsatisfiable
    return first, end


def none_match(header: str, etag: str) -> bool:
    """Whether ``If-None-Match`` matches: ``*``, or ``etag`` by weak comparison
    (RFC 9110 13.1.2: ``W/"x"`` matches ``"x"``)."""
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or etag in [t.removeprefix("W/") for t in tags]


def _not_modified_since(header: str | None, last_modified: Time | None) -> bool:
    """Whether ``If-Modified-Since`` names ``last_modified`` or later, to the second (as
    ``Last-Modified`` is written); a date that does not parse is ignored (RFC 9110
    13.1.3)."""
    if header is None or last_modified is None:
        return False
    try:
        parsed = email.utils.parsedate_tz(header)
        since = None if parsed is None else email.utils.mktime_tz(parsed)
    except (ValueError, OverflowError):
        return False
    return since is not None and last_modified // UNITS_PER_SEC <= since


class _Unsatisfiable(Exception):
    pass


def http_date(t: Time) -> str:
    return email.utils.format_datetime(to_datetime(t), usegmt=True)


#: a file of recorded video: the browser keeps it but asks again before each use (a
#: ``304`` reads no sample byte), so a redaction committed later is a ``404`` at once
#: rather than a copy kept for an hour
REVALIDATE = "private, no-cache"
#: what never changes and shows no video (an init segment)
KEEP = "private, max-age=3600"


def serve(vf: VirtualFile, *, filename: str | None = None, cacheable: bool = True,
          cache_control: str = REVALIDATE,
          archived: Mapping[int, tuple[int, str]] | None = None) -> Response:
    """The response for ``vf`` (validators, range); ``cacheable``: its bytes never change
    (no growing recording), so dates validate it too; ``archived``: ``archive_sources``
    of its segments. A read that fails once the headers are sent (the archive went away,
    a file vanished) ends the body early, logged once, never a second status."""
    headers = {
        "ETag": vf.etag,
        "Accept-Ranges": "bytes",
        "Cache-Control": cache_control,
    }
    if vf.last_modified_90k is not None:
        headers["Last-Modified"] = http_date(vf.last_modified_90k)
    if filename:
        headers["Content-Disposition"] = f'inline; filename="{filename}"'
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        if none_match(if_none_match, vf.etag):
            return Response(b"", status=304, headers=headers)
    elif cacheable and _not_modified_since(request.headers.get("If-Modified-Since"),
                                           vf.last_modified_90k):
        return Response(b"", status=304, headers=headers)
    rng: tuple[int, int] | None = None
    range_header = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    if range_header is not None and (
        if_range is None
        or if_range == vf.etag
        # a date validates only content that no longer changes (RFC 9110 8.8.2.2)
        or (cacheable and if_range == headers.get("Last-Modified"))
    ):
        try:
            rng = parse_range(range_header, vf.size)
        except _Unsatisfiable:
            resp = text_response(416, f"the range is outside the file ({vf.size} bytes)")
            resp.headers.update(headers)
            resp.headers["Content-Range"] = f"bytes */{vf.size}"
            return resp
    start, end = rng or (0, vf.size)
    status = 200
    if rng is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{vf.size}"
    headers["Content-Length"] = str(end - start)
    # Quart iterates a HEAD response's body too, for the server to drop it: read nothing.
    head = request.method == "HEAD"
    prefetcher = None
    reads = ctx().archive_reads
    if archived and reads is not None and not head:
        prefetcher = reads.prefetcher(
            {cid: aid for cid, (aid, _key) in archived.items()},
            archive_plan(vf, start, end, archived),
        )
    reader = SampleReader(ctx().db, ctx().dirs, prefetcher)

    run = run_blocking  # as looked up now (tests replace it)
    path = request.path

    async def body() -> AsyncIterator[bytes]:
        sent = start
        try:
            if head:
                return
            async for chunk in vf.read(start, end, reader, CHUNK, run):
                yield chunk
                sent += len(chunk)
        except errors.NvrError as e:
            # the status line is gone: end the body short (the client sees fewer bytes
            # than Content-Length) rather than a traceback from the server
            # an archive or network going away is a warning; a disk failing an error
            log.log(logging.WARNING if isinstance(e, errors.Unavailable) else logging.ERROR,
                    "%s: response ended at byte %d of [%d, %d): %s",
                    path, sent, start, end, one_line(str(e)))
        finally:
            reader.close()

    resp = Response(body(), status=status, headers=headers, content_type=vf.mime_type)
    resp.timeout = None  # a long download must not be cut off
    return resp


def _download_name(stream: Stream, first: ListedRecording, vf: VirtualFile,
                   ext: str) -> str | None:
    """The file's name: when its first frame (of recording ``first``) starts, locally."""
    if not vf.segments:
        return None
    db = ctx().db
    start = first.start_time_90k + vf.segments[0].actual_start_90k
    stamp = to_datetime(start, db.tz).strftime("%Y%m%d%H%M%S")
    cam = db.cameras[stream.camera_id].short_name
    return f"{stamp}-{cam}-{stream.type}.{ext}"


@blueprint.route("/api/cameras/<camera_uuid>/<stream_type>/view.<kind>", methods=["GET"])
async def view(camera_uuid: str, stream_type: str, kind: str) -> Response:
    if kind not in ("mp4", "m4s", "mp4.txt", "m4s.txt"):
        raise errors.NotFound(f"no view.{kind}")
    stream = stream_of(camera_by_uuid(camera_uuid), stream_type)
    transcode = wants_transcode(request.args.get("transcode"))
    segments = segments_for_request(stream)
    db = ctx().db
    if transcode:
        if kind.endswith(".txt"):
            raise errors.InvalidArgument("transcode=h264 has no .txt dump")
        return await view_response(segments, kind)
    if kind.startswith("mp4"):
        tz = db.tz if bool_arg("ts") else None
        vf = await plan_mp4(segments, db.video_sample_entries, fetch=db.get_video_index,
                            subtitle_tz=tz, run=run_blocking)
    else:
        vf = await plan_m4s(segments, db.video_sample_entries, fetch=db.get_video_index,
                            run=run_blocking)
    if kind.endswith(".txt"):
        return text_response(200, vf.text_dump())
    growing = any(not s.recording.committed for s in segments)
    resp = serve(vf, filename=_download_name(stream, segments[0].recording, vf, kind),
                 cacheable=not growing,
                 archived=archive_sources(s.recording for s in segments))
    if kind == "m4s":
        # Media duration of all the stream's recordings before the first segment's.
        resp.headers["X-Prev-Media-Duration"] = str(vf.prev_media_duration_90k)
        # Runs up to and including the first segment's (its own run counts).
        resp.headers["X-Runs"] = str(vf.prev_runs + 1)
        if vf.leading_media_duration_90k:
            resp.headers["X-Leading-Media-Duration"] = str(vf.leading_media_duration_90k)
    return resp


@blueprint.route("/api/init/<name>", methods=["GET"])
async def init_segment(name: str) -> Response:
    m = re.fullmatch(r"(\d{1,9})\.mp4(\.txt)?", name, re.ASCII)
    if m is None:
        raise errors.NotFound(f"no init segment {name!r}")
    entry_id = int(m[1])
    entry = ctx().db.video_sample_entries.get(entry_id)
    if entry is None:
        raise errors.NotFound(f"no video sample entry {entry_id}")
    vf = build_init(entry_id, entry)
    if m[2]:
        return text_response(200, vf.text_dump())
    resp = serve(vf, cache_control=KEEP)
    resp.headers["X-Aspect"] = f"{vf.aspect[0]}:{vf.aspect[1]}"
    return resp
