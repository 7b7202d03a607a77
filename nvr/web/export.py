"""``GET /api/export``: several cameras and time ranges as one signed ``.zip``, streamed.

Query: ``camera=<uuid>`` (repeatable, at most ``MAX_CAMERAS``), ``range=<start90k>-<end90k>``
(wall time, repeatable, at most ``MAX_RANGES``), ``stream=main|sub`` (default ``main``).
A ``GET`` because it changes nothing, so a plain link downloads it (no CSRF token, no
body); permission ``viewVideo``.

The zip holds, for each camera and range, the video in it as ``.mp4`` files laid out by
``nvr.mp4`` exactly as ``view.mp4`` lays them out (the same recordings, the same bytes):
one file per run of the camera in the range (a run's last frame has no duration, so a
file cannot go on past it; most ranges are one run), then ``manifest.json`` (format
``nvr-export/1``: each file's name, camera, stream, range, recordings, actual wall span,
size and SHA-256; the cameras and ranges asked for, with those that had no video; who
exported, when, the nvr version and the public key) and ``manifest.json.sig`` (the
Ed25519 signature of ``manifest.json``'s exact bytes, in hex, by ``nvr.db.signing``'s
key). ``nvr verify-export`` checks it all.

**Streaming.** Every file is laid out before the response starts (so a bad request is a
4xx, never a broken download; layouts are small: sample tables are generated as bytes
are read), then written through the standard library's ``zipfile`` onto a sink that
cannot seek: zipfile then writes each member's sizes and CRC after its data (a data
descriptor; members are ``STORED``: video does not compress), and ``ZIP64`` records when
a member or the archive passes 4 GiB. Each chunk of sample bytes (``view.CHUNK``) is
hashed and framed in a worker thread and sent before the next is read, so memory stays
at a few chunks whatever the export's size, and nothing is written to disk. A recording
deleted by retention while its export runs ends the download early (the zip then has no
central directory, and no manifest: nothing half-signed).

Redacted ranges (``nvr.db.redactions``) are left out like everywhere else: the
listings this reads already skip them.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from quart import Blueprint, Response, request

from nvr.base import errors
from nvr.base.blocking import run_blocking
from nvr.base.time90k import Time, to_datetime
from nvr.db import signing
from nvr.db.types import FLAG_TRAILING_ZERO, Camera, ListedRecording, Stream
from nvr.mp4.movie import plan_mp4
from nvr.mp4.selection import Segment, lazy_segment, media_to_wall, wall_to_media
from nvr.mp4.virtual import VirtualFile
from nvr.web import auth
from nvr.web.context import MAX_TIME, WebContext, camera_by_uuid, ctx, parse_int, stream_of
from nvr.web.view import CHUNK, SampleReader, archive_plan, archive_sources

blueprint = Blueprint("export", __name__)

FORMAT = "nvr-export/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
MAX_CAMERAS = 32
MAX_RANGES = 32
#: files in one export (a flaky camera has many runs in a range: one file each)
MAX_FILES = 1000
_RANGE_RE = re.compile(r"(\d+)-(\d+)", re.ASCII)
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class Member:
    """One ``.mp4`` of the export, laid out."""

    name: str
    camera: Camera
    stream: Stream
    range_index: int
    vf: VirtualFile
    recordings: list[ListedRecording]
    start_90k: Time  # wall time of its first frame
    end_90k: Time  # wall time where its last frame ends


def parse_range(text: str) -> tuple[Time, Time]:
    m = _RANGE_RE.fullmatch(text)
    shown = text if len(text) <= 60 else text[:57] + "..."
    if m is None:
        raise errors.InvalidArgument(f"bad range={shown!r}: expected START90K-END90K")
    start, end = parse_int(m[1], "range"), parse_int(m[2], "range")
    if start >= MAX_TIME or end > MAX_TIME:
        raise errors.InvalidArgument(f"bad range={shown!r}: time out of range")
    if end <= start:
        raise errors.InvalidArgument(f"bad range={shown!r}: empty or reversed")
    return start, end


def parts_in_range(stream: Stream, start: Time, end: Time) -> list[list[Segment]]:
    """The segments of ``stream``'s video in ``[start, end)``, split after every
    recording that ends its run (a trailing zero): each part is one ``.mp4``."""
    db = ctx().db
    by_time = db.list_recordings_by_time(stream.id, start, end)
    if not by_time:
        return []
    ids = sorted(r.recording_id for r in by_time)
    # by id: the listing that carries stored index summaries (no index is read for a
    # whole recording), restricted to what the time listing found
    wanted = set(ids)
    recs = [r for r in db.list_recordings_by_id(stream.id, ids[0], ids[-1] + 1)
            if r.recording_id in wanted]
    parts: list[list[Segment]] = []
    current: list[Segment] = []
    for r in sorted(recs, key=lambda r: r.recording_id):
        lo = max(0, start - r.start_time_90k)
        hi = end - r.start_time_90k
        rel_start = wall_to_media(r, lo)
        rel_end = (r.media_duration_90k if hi >= r.wall_duration_90k
                   else wall_to_media(r, hi, round_up=True))
        if rel_end <= rel_start and r.media_duration_90k > 0:
            continue
        current.append(lazy_segment(db, r, rel_start, max(rel_end, rel_start)))
        if r.flags & FLAG_TRAILING_ZERO:
            parts.append(current)
            current = []
    if current:
        parts.append(current)
    return parts


def _safe(text: str) -> str:
    return _NAME_UNSAFE.sub("_", text).strip("._") or "camera"


async def plan_members(cameras: list[Camera], stream_type: str,
                       ranges: list[tuple[Time, Time]]) -> tuple[list[Member], list[Any]]:
    """Every file of the export laid out, and the (camera, range) pairs without video."""
    db = ctx().db
    members: list[Member] = []
    empty: list[Any] = []
    for cam in cameras:
        stream = stream_of(cam, stream_type)
        for ri, (start, end) in enumerate(ranges):
            parts = parts_in_range(stream, start, end)
            if not parts:
                empty.append({"camera": str(cam.uuid), "range": ri})
            for segments in parts:
                if len(members) >= MAX_FILES:
                    raise errors.InvalidArgument(
                        f"the export would hold more than {MAX_FILES} files: ask for less"
                    )
                vf = await plan_mp4(segments, db.video_sample_entries,
                                    fetch=db.get_video_index, run=run_blocking)
                first, last = vf.segments[0], vf.segments[-1]
                r0, r1 = segments[0].recording, segments[-1].recording
                t0 = r0.start_time_90k + media_to_wall(r0, first.actual_start_90k)
                t1 = r1.start_time_90k + media_to_wall(r1, last.actual_end_90k)
                stamp = to_datetime(t0, db.tz).strftime("%Y%m%d%H%M%S")
                name = (f"{len(members) + 1:03d}-{_safe(cam.short_name)}-{stream.type}-"
                        f"{stamp}.mp4")
                members.append(Member(name, cam, stream, ri, vf,
                                      [s.recording for s in segments], t0, t1))
    return members, empty


class _Sink(io.RawIOBase):
    """Collects what zipfile writes; it can tell its position but not seek, so zipfile
    writes data descriptors instead of going back."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._pos = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, b: Any) -> int:
        data = bytes(b)
        self._parts.append(data)
        self._pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self._pos

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


class ZipStream:
    """A zip written piece by piece: each call returns the bytes to send next."""

    def __init__(self, date_time: tuple[int, int, int, int, int, int]) -> None:
        self._sink = _Sink()
        self._zip = zipfile.ZipFile(self._sink, "w", zipfile.ZIP_STORED, allowZip64=True)
        self._date_time = date_time
        self._member: Any = None
        self._hash = hashlib.sha256()

    def _info(self, name: str, size: int) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, self._date_time)
        info.file_size = size  # decides ZIP64 for this member up front
        info.external_attr = 0o644 << 16
        return info

    def begin(self, name: str, size: int) -> bytes:
        self._member = self._zip.open(self._info(name, size), "w")
        self._hash = hashlib.sha256()
        return self._sink.take()

    def write(self, data: bytes) -> bytes:
        self._member.write(data)
        self._hash.update(data)
        return self._sink.take()

    def end(self) -> tuple[bytes, str]:
        """Closes the member: its trailing bytes and its SHA-256 in hex."""
        self._member.close()
        self._member = None
        return self._sink.take(), self._hash.hexdigest()

    def add(self, name: str, data: bytes) -> bytes:
        out = self.begin(name, len(data)) + self.write(data)
        return out + self.end()[0]

    def finish(self) -> bytes:
        self._zip.close()
        return self._sink.take()


def manifest_json(c: WebContext, members: list[Member], hashes: list[str], *,
                  cameras: list[Camera], stream_type: str, ranges: list[tuple[Time, Time]],
                  empty: list[Any], user: str | None, now: Time, public_key: str) -> bytes:
    """The manifest (``c``: the request's context, passed in as the body is made after
    the request's app context is gone)."""
    out = {
        "format": FORMAT,
        "nvrVersion": c.server_version,
        "exportedBy": user,
        "exportedAt90k": now,
        "exportedAt": to_datetime(now, c.db.tz).isoformat(),
        "timeZoneName": c.time_zone_name,
        "publicKey": public_key,
        "stream": stream_type,
        "cameras": [{"uuid": str(cam.uuid), "shortName": cam.short_name} for cam in cameras],
        "ranges": [{"startTime90k": s, "endTime90k": e} for s, e in ranges],
        "noVideo": empty,
        "files": [
            {
                "name": m.name,
                "camera": str(m.camera.uuid),
                "stream": m.stream.type,
                "range": m.range_index,
                "startTime90k": m.start_90k,
                "endTime90k": m.end_90k,
                "recordings": [[r.recording_id, r.open_id] for r in m.recordings],
                "bytes": m.vf.size,
                "sha256": h,
            }
            for m, h in zip(members, hashes, strict=True)
        ],
    }
    return (json.dumps(out, indent=1) + "\n").encode()


@blueprint.route("/api/export", methods=["GET"])
async def export() -> Response:
    c = ctx()
    uuids = request.args.getlist("camera")
    range_texts = request.args.getlist("range")
    stream_type = request.args.get("stream", "main")
    if not uuids or not range_texts:
        raise errors.InvalidArgument("at least one camera= and one range= are required")
    if len(uuids) > MAX_CAMERAS or len(range_texts) > MAX_RANGES:
        raise errors.InvalidArgument(
            f"at most {MAX_CAMERAS} cameras and {MAX_RANGES} ranges per export"
        )
    if len(set(uuids)) != len(uuids):
        raise errors.InvalidArgument("a camera is named twice")
    cameras = [camera_by_uuid(u) for u in uuids]
    ranges = [parse_range(t) for t in range_texts]
    key = signing.load_key(c.db.db_dir)
    members, empty = await plan_members(cameras, stream_type, ranges)
    if not members:
        raise errors.NotFound("no video in these ranges for these cameras")
    now = c.clocks.realtime()
    session = auth.caller().session
    user = None if session is None else session.user.username
    local = to_datetime(now, c.db.tz)
    date_time = (max(local.year, 1980), local.month, local.day, local.hour, local.minute,
                 local.second)
    # archive-only recordings are read from their archive, ahead of the zip's writing
    sources = archive_sources(r for m in members for r in m.recordings)
    prefetcher = None
    if sources and c.archive_reads is not None:
        prefetcher = c.archive_reads.prefetcher(
            {cid: aid for cid, (aid, _key) in sources.items()},
            [x for m in members for x in archive_plan(m.vf, 0, m.vf.size, sources)],
        )
    reader = SampleReader(c.db, c.dirs, prefetcher)
    run = run_blocking  # as looked up now (tests replace it)

    async def body() -> AsyncIterator[bytes]:
        z = ZipStream(date_time)
        hashes: list[str] = []
        try:
            for m in members:
                yield z.begin(m.name, m.vf.size)
                async for chunk in m.vf.read(0, m.vf.size, reader, CHUNK, run):
                    yield await run(z.write, chunk)
                tail, digest = z.end()
                hashes.append(digest)
                yield tail
            manifest = manifest_json(
                c, members, hashes, cameras=cameras, stream_type=stream_type, ranges=ranges,
                empty=empty, user=user, now=now, public_key=signing.public_key_text(key))
            yield z.add(MANIFEST, manifest)
            yield z.add(SIGNATURE, (signing.sign(key, manifest) + "\n").encode())
            yield z.finish()
        finally:
            reader.close()

    stamp = local.strftime("%Y%m%d%H%M%S")
    resp = Response(body(), status=200, content_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="nvr-export-{stamp}.zip"',
        "Cache-Control": "private, no-store",
    })
    resp.timeout = None  # a long download must not be cut off
    return resp
