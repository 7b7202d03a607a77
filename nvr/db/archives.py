"""The archives part of ``Database``: archives, the streams they copy, what they hold.

An *archive* (docs/design.md, "Archive tier") is a bucket and key prefix of S3-compatible
object storage with its credentials (kept in ``config`` like a camera's password: never in
``repr``, logs or the API; ``ArchiveConfig.public`` is what may be shown), its retention
and upload settings. It copies a set of streams (by default every main stream when it is
added). ``archived_recording`` holds one row per recording whose objects the server
accepted with verified checksums; the uploader (``nvr.archive.uploader``) adds it only
then, so a recording is either fully archived or not at all. Rows outlive local deletion:
then the recording's own row and index move to ``archive_only_recording`` (in the flush
that deletes the file, ``Lifecycle.flush``), so it stays listed (``ListedRecording.
archive_only``) and playable from the archive, until no archive holds it any more.

What belongs here: those operations and value types; the queries the uploader and
retention ask (what is not archived yet, the backlog, whether recordings are archived).
Not here: object storage, tasks. SQL is in ``raw``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import uuid as uuidlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from nvr.base import errors
from nvr.base.time90k import Time
from nvr.db import raw, raw_archive
from nvr.db.core import DatabaseCore
from nvr.db.frames_summary import summarize_index
from nvr.db.raw import split_composite_id
from nvr.db.types import Camera, CameraConfig, ListedRecording, Stream, StreamConfig

log = logging.getLogger(__name__)

_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(slots=True)
class ArchiveConfig:
    endpoint: str = ""
    bucket: str = ""
    prefix: str = ""  # "" or ends with "/"
    region: str = "us-east-1"
    access_key: str = field(default="", repr=False)
    secret_key: str = field(default="", repr=False)
    retain_days: int | None = None
    retain_bytes: int | None = None  # per stream
    max_rate: int | None = None  # bytes per second, all uploads of this archive
    #: local retention deletes a recording of a copied stream only once it is archived
    require_archived: bool = False

    def validate(self) -> None:
        u = urlsplit(self.endpoint)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise errors.InvalidArgument("endpoint must be an http:// or https:// URL")
        if u.username or u.password or u.query or u.fragment or u.path not in ("", "/"):
            raise errors.InvalidArgument(
                "endpoint must be scheme://host[:port] only (credentials go in "
                "--access-key and --secret-key-stdin)"
            )
        if not _BUCKET_RE.fullmatch(self.bucket):
            raise errors.InvalidArgument(
                "bucket must be 3-63 characters of a-z, 0-9, '.' and '-'"
            )
        if self.prefix.startswith("/") or "//" in self.prefix or len(self.prefix) > 256:
            raise errors.InvalidArgument("prefix must be relative, without '//', at most 256")
        if not self.access_key or not self.secret_key:
            raise errors.InvalidArgument("an access key and a secret key are required")
        for name in ("retain_days", "retain_bytes", "max_rate"):
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise errors.InvalidArgument(f"{name} must be > 0")

    def normalized(self) -> ArchiveConfig:
        prefix = self.prefix.strip()
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return dataclasses.replace(self, prefix=prefix, endpoint=self.endpoint.rstrip("/"))

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in dataclasses.asdict(self).items() if v is not None})

    @classmethod
    def from_json(cls, text: str) -> ArchiveConfig:
        d = json.loads(text)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def public(self) -> dict[str, Any]:
        """What may be shown (API, ``list``): everything but the credentials."""
        d = dataclasses.asdict(self)
        del d["access_key"], d["secret_key"]
        return d


@dataclass(slots=True)
class Archive:
    id: int
    uuid: uuidlib.UUID
    short_name: str
    config: ArchiveConfig
    streams: set[int] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class UnarchivedRecording:
    """A committed recording an archive does not hold yet (its row, for the upload)."""

    recording: ListedRecording
    #: the SHA-256 the writer computed (None: an old row without one)
    sample_file_sha256: bytes | None


@dataclass(frozen=True, slots=True)
class ArchivedRecording:
    composite_id: int
    start_time_90k: Time
    wall_duration_90k: int
    sample_file_bytes: int
    sample_file_sha256: bytes


@dataclass(frozen=True, slots=True)
class RestoredRecording:
    """A recording read back from an archive's description object (``nvr archive
    restore``): its camera and stream, its row (``raw_archive.ROW_COLUMN_NAMES`` but the
    summary), index and SHA-256."""

    camera_uuid: uuidlib.UUID
    camera_name: str
    stream_type: str
    row: dict[str, Any]
    video_index: bytes
    sha256: bytes


@dataclass(frozen=True, slots=True)
class RestoreResult:
    restored: int  # recordings added
    present: int  # already in the database
    cameras: int  # cameras added
    streams: int  # streams added


@dataclass(frozen=True, slots=True)
class Backlog:
    recordings: int
    bytes: int
    oldest_start_90k: Time | None


@dataclass(slots=True)
class _BacklogSet:
    """An archive's backlog in memory: per stream, its unarchived recordings in commit
    order (composite id -> (start, bytes)), and the totals."""

    by_stream: dict[int, dict[int, tuple[Time, int]]] = field(default_factory=dict)
    recordings: int = 0
    bytes: int = 0

    def add(self, stream_id: int, cid: int, start: Time, nbytes: int) -> None:
        d = self.by_stream.setdefault(stream_id, {})
        if cid not in d:
            d[cid] = (start, nbytes)
            self.recordings += 1
            self.bytes += nbytes

    def discard(self, stream_id: int, cid: int) -> None:
        d = self.by_stream.get(stream_id)
        if d is not None and (v := d.pop(cid, None)) is not None:
            self.recordings -= 1
            self.bytes -= v[1]

    def summary(self) -> Backlog:
        # each stream's first entry is its oldest: O(streams), not O(backlog)
        starts = [next(iter(d.values()))[0] for d in self.by_stream.values() if d]
        return Backlog(self.recordings, self.bytes, min(starts, default=None))


class Archives(DatabaseCore):
    """Archives; see the module docstring."""

    archives: dict[int, Archive]
    #: archive id -> recordings of its streams deleted locally before it held them
    #: (since this open; for metrics)
    never_archived: dict[int, int]

    #: archive id -> its backlog, loaded on first use (None: to load) and then kept by
    #: the commit, deletion and upload paths, so ``/api/`` and ``/metrics`` ask no SQL
    _backlogs: dict[int, _BacklogSet] | None = None

    def _load_archives(self) -> None:
        self.archives = {}
        self.never_archived = {}
        self._backlogs = None
        for aid, u, name, cfg in raw_archive.list_archives(self._conn):
            self.archives[aid] = Archive(
                aid, uuidlib.UUID(bytes=u), name, ArchiveConfig.from_json(cfg)
            )
        for aid, sid in raw_archive.list_archive_streams(self._conn):
            self.archives[aid].streams.add(sid)

    def _archive(self, archive_id: int) -> Archive:
        try:
            return self.archives[archive_id]
        except KeyError:
            raise errors.NotFound(f"no archive with id {archive_id}") from None

    def archive_by_name(self, name: str) -> Archive:
        for a in self.archives.values():
            if a.short_name == name:
                return a
        raise errors.NotFound(f"no archive named {name!r}")

    def _check_streams(self, stream_ids: Iterable[int]) -> list[int]:
        ids = sorted(set(stream_ids))
        for sid in ids:
            self._stream(sid)
        return ids

    def add_archive(
        self, short_name: str, config: ArchiveConfig, stream_ids: Iterable[int] | None = None
    ) -> Archive:
        """Adds an archive copying ``stream_ids`` (None: every main stream)."""
        if not _NAME_RE.fullmatch(short_name):
            raise errors.InvalidArgument(
                "archive name: 1-64 characters of letters, digits, '_', '.', '-'"
            )
        if any(a.short_name == short_name for a in self.archives.values()):
            raise errors.AlreadyExists(f"archive {short_name!r} already exists")
        config = config.normalized()
        config.validate()
        if stream_ids is None:
            stream_ids = [s.id for s in self.streams.values() if s.type == "main"]
        ids = self._check_streams(stream_ids)
        u = uuidlib.uuid4()
        with self._transaction(f"adding archive {short_name}") as conn:
            aid = raw_archive.insert_archive(conn, u.bytes, short_name, config.to_json())
            raw_archive.set_archive_streams(conn, aid, ids)
        a = Archive(aid, u, short_name, config, set(ids))
        self.archives[aid] = a
        self._backlogs = None  # counted again with it on the next ask
        return a

    def update_archive(
        self, archive_id: int, config: ArchiveConfig | None = None,
        stream_ids: Iterable[int] | None = None,
    ) -> Archive:
        a = self._archive(archive_id)
        if config is not None:
            config = config.normalized()
            config.validate()
        ids = None if stream_ids is None else self._check_streams(stream_ids)
        with self._transaction(f"changing archive {a.short_name}") as conn:
            if config is not None:
                raw_archive.update_archive(conn, archive_id, config.to_json())
            if ids is not None:
                raw_archive.set_archive_streams(conn, archive_id, ids)
        if config is not None:
            a.config = config
        if ids is not None:
            a.streams = set(ids)
            self._backlogs = None
        return a

    def delete_archive(self, archive_id: int) -> None:
        """Forgets the archive and what it holds (its objects stay in the bucket)."""
        a = self._archive(archive_id)
        with self._transaction(f"deleting archive {a.short_name}") as conn:
            gone = raw_archive.delete_archive(conn, archive_id)
            raw_archive.change_archive_only_days(conn, gone, self.tz, -1)
        self._archive_only_changed(gone, -1)
        del self.archives[archive_id]
        self._backlogs = None

    def _may_delete(self, stream_id: int) -> Callable[[int], bool] | None:
        required = self.archives_required_for(stream_id)
        if not required:
            return None
        return lambda cid: bool(self.archived_everywhere(required, [cid]))

    def _count_unarchived_deletions(self, stream_id: int, cids: list[int]) -> None:
        if self._backlogs is not None:
            for b in self._backlogs.values():
                for cid in cids:
                    b.discard(stream_id, cid)
        for a in self.archives.values():
            if stream_id not in a.streams or not cids:
                continue
            lost = len(cids) - len(self.archived_everywhere([a.id], cids))
            if lost:
                self.never_archived[a.id] = self.never_archived.get(a.id, 0) + lost
                log.warning(
                    "archive %s: %d recordings of stream %d deleted locally before they "
                    "were archived", a.short_name, lost, stream_id,
                )

    def _forget_stream_archives(self, stream_id: int) -> None:
        for a in self.archives.values():
            a.streams.discard(stream_id)
        self._backlogs = None

    def _committed_recordings(self, stream_id: int, recs: list[tuple[int, Time, int, int]]) -> None:
        if self._backlogs is None:
            return
        for aid, b in self._backlogs.items():
            if stream_id not in self.archives[aid].streams:
                continue
            for cid, start, wall, nbytes in recs:
                if not self.is_hidden(stream_id, start, start + wall):
                    b.add(stream_id, cid, start, nbytes)

    def _redaction_added(self) -> None:
        self._backlogs = None  # rare: recount (hidden recordings are never archived)

    def _backlog_sets(self) -> dict[int, _BacklogSet]:
        if self._backlogs is None:
            backlogs = {}
            with self._read("loading archive backlogs") as conn:
                for aid in self.archives:
                    b = backlogs[aid] = _BacklogSet()
                    for cid, start, nbytes in raw_archive.list_backlog(conn, aid):
                        b.add(split_composite_id(cid)[0], cid, start, nbytes)
            self._backlogs = backlogs
        return self._backlogs

    def unarchived(
        self, archive_id: int, limit: int, skip: Iterable[int] = ()
    ) -> list[UnarchivedRecording]:
        """The oldest committed recordings of the archive's streams it does not hold,
        leaving out those under a redaction and those in ``skip``."""
        with self._read("listing recordings to archive") as conn:
            rows = raw_archive.list_unarchived(conn, archive_id, limit, sorted(skip))
        return [
            UnarchivedRecording(
                ListedRecording.from_row(r[:-1]), None if r[-1] is None else bytes(r[-1])
            )
            for r in rows
        ]

    def archive_backlog(self, archive_id: int) -> Backlog:
        """What the archive does not hold yet (never under a redaction): from memory
        after the first call (one query per archive then)."""
        self._archive(archive_id)
        return self._backlog_sets()[archive_id].summary()

    def mark_archived(
        self, archive_id: int, done: list[tuple[ListedRecording, bytes]], now: Time
    ) -> None:
        """Records that the archive holds these recordings (each with its SHA-256), in one
        transaction (call only after both objects of each were written and verified)."""
        with self._transaction("recording archived recordings") as conn:
            for rec, sha256 in done:
                raw_archive.insert_archived_recording(
                    conn, archive_id, rec.composite_id, rec.start_time_90k,
                    rec.wall_duration_90k, rec.sample_file_bytes, sha256, now,
                )
        if self._backlogs is not None:
            b = self._backlogs[archive_id]
            for rec, _ in done:
                b.discard(rec.stream_id, rec.composite_id)

    def archived_in(self, archive_id: int, stream_id: int) -> list[ArchivedRecording]:
        with self._read("listing archived recordings") as conn:
            rows = raw_archive.list_archived(conn, archive_id, stream_id)
        return [ArchivedRecording(c, s, w, b, bytes(h)) for c, s, w, b, h in rows]

    def forget_archived(self, archive_id: int, cids: list[int]) -> None:
        """After archive retention deleted these recordings' objects."""
        gone: list[raw_archive.DayRec] = []
        with self._transaction("forgetting archived recordings") as conn:
            for cid in cids:
                gone += raw_archive.delete_archived_recording(conn, archive_id, cid)
            raw_archive.change_archive_only_days(conn, gone, self.tz, -1)
        self._archive_only_changed(gone, -1)
        self._backlogs = None  # a recording still here is unarchived again: recount

    def _archive_only_changed(self, recs: list[raw_archive.DayRec], sign: int) -> None:
        """Memory after ``raw_archive.change_archive_only_days`` committed."""
        for sid, start, wall, nbytes in recs:
            s = self.streams.get(sid)
            if s is not None:
                if sign > 0:
                    s.archive_only.add(start, wall, nbytes, self.tz)
                else:
                    s.archive_only.remove(start, wall, nbytes, self.tz)

    def expire_archived(self, archive_id: int, cid: int, camera_uuid: uuidlib.UUID,
                        stream_type: str) -> None:
        """After archive retention deleted this recording's objects (under that camera
        uuid and stream type: ``archive_retention_streams``): forgets it (as
        ``forget_archived``) and remembers that retention got this far in its stream, so
        that it is never uploaded again while it is still local."""
        with self._transaction("expiring an archived recording") as conn:
            gone = raw_archive.expire_archived(conn, archive_id, cid, camera_uuid.bytes,
                                               stream_type)
            raw_archive.change_archive_only_days(conn, gone, self.tz, -1)
        self._archive_only_changed(gone, -1)
        self._backlogs = None

    def archive_retention_streams(
        self, archive_id: int
    ) -> dict[int, tuple[uuidlib.UUID, str]]:
        """The streams the archive holds recordings of, with the camera uuid and stream
        type their objects are under: a deleted camera's streams too (its keys were kept
        in ``archive_stream_retention`` when it was deleted)."""
        with self._read("listing the streams an archive holds") as conn:
            held = raw_archive.held_streams(conn, archive_id)
            kept = {sid: (uuidlib.UUID(bytes=u), t)
                    for sid, u, t in raw_archive.retention_keys(conn, archive_id)}
        out: dict[int, tuple[uuidlib.UUID, str]] = {}
        for sid in held:
            s = self.streams.get(sid)
            if s is not None:
                out[sid] = (self.cameras[s.camera_id].uuid, s.type)
            elif sid in kept:
                out[sid] = kept[sid]
        return out

    def archived_overlapping(
        self, archive_id: int, stream_id: int, start: Time, end: Time
    ) -> list[int]:
        """The stream's recordings the archive holds that overlap ``[start, end)``."""
        with self._read("listing archived recordings in a range") as conn:
            return raw_archive.archived_overlapping(conn, archive_id, stream_id, start, end)

    def archived_ids_from(self, archive_id: int, stream_id: int, start_id: int) -> set[int]:
        """Composite ids of the stream's recordings the archive holds from recording id
        ``start_id`` on."""
        with self._read("listing recent archived recordings") as conn:
            return set(raw_archive.archived_ids_from(conn, archive_id, stream_id, start_id))

    def last_archived_id(self, archive_id: int, stream_id: int) -> int | None:
        """The stream's highest composite id the archive holds (None: none)."""
        with self._read("finding the last archived recording") as conn:
            return raw_archive.last_archived_id(conn, archive_id, stream_id)

    def archives_holding(self, cid: int) -> list[int]:
        """Ids of the archives that hold the recording, lowest first."""
        with self._read("looking up archived recordings") as conn:
            return raw_archive.archives_holding(conn, cid)

    def archives_required_for(self, stream_id: int) -> list[int]:
        """The archives that must hold a recording of the stream before local retention
        may delete it (``require_archived``)."""
        return [
            a.id for a in self.archives.values()
            if a.config.require_archived and stream_id in a.streams
        ]

    def archived_everywhere(self, archive_ids: list[int], cids: list[int]) -> set[int]:
        """Which of ``cids`` every archive of ``archive_ids`` holds."""
        out = set(cids)
        with self._read("checking archived recordings") as conn:
            for aid in archive_ids:
                out &= raw_archive.archived_ids(conn, aid, cids)
        return out

    def restore_recordings(
        self, archive_id: int, recs: list[RestoredRecording], now: Time
    ) -> RestoreResult:
        """Adds the recordings (archive-only, held by the archive) with their cameras
        (by uuid; a name taken by another camera gets a suffix) and streams (with the ids
        they had: composite ids embed them; not recorded), in one transaction; recordings
        already in the database are kept as they are. Refuses (``FailedPrecondition``)
        a stream whose id this database uses for another camera or type. The archive then
        copies the restored streams too. Each row names its sample entry's id in this
        database (``Catalog.insert_video_sample_entry``)."""
        a = self._archive(archive_id)
        new_cams: dict[uuidlib.UUID, Camera] = {}
        new_streams: dict[int, Stream] = {}
        counters: dict[int, tuple[int, int, int]] = {}
        restored = present = 0
        added: list[raw_archive.DayRec] = []
        by_uuid = {c.uuid: c for c in self.cameras.values()}
        names = {c.short_name for c in self.cameras.values()}
        with self._transaction(f"restoring {len(recs)} recordings from {a.short_name}") as conn:
            for r in recs:
                cam = by_uuid.get(r.camera_uuid)
                if cam is None:
                    name, n = r.camera_name, 1
                    while name in names:
                        n += 1
                        name = f"{r.camera_name}-{n}"
                    cfg = CameraConfig()
                    cid = raw.insert_camera(conn, r.camera_uuid.bytes, name, "", cfg.to_json())
                    cam = by_uuid[r.camera_uuid] = new_cams[r.camera_uuid] = Camera(
                        cid, r.camera_uuid, name, "", cfg)
                    names.add(name)
                sid = int(r.row["stream_id"])
                have = self.streams.get(sid) or new_streams.get(sid)
                if have is None:
                    if r.stream_type in cam.streams:
                        raise errors.FailedPrecondition(
                            f"camera {cam.short_name!r} has a {r.stream_type} stream with "
                            f"id {cam.streams[r.stream_type]}, the archive's has id {sid}")
                    scfg = StreamConfig(mode="off")
                    raw_archive.insert_restored_stream(conn, sid, cam.id, r.stream_type,
                                                       scfg.to_json())
                    have = new_streams[sid] = Stream(sid, cam.id, r.stream_type, None, scfg,
                                                     0, 0, 0)
                    cam.streams[r.stream_type] = sid
                elif have.camera_id != cam.id or have.type != r.stream_type:
                    raise errors.FailedPrecondition(
                        f"stream id {sid} is another camera's or type's in this database "
                        "(restore into a new database)")
                cid = int(r.row["composite_id"])
                raw_archive.hold(conn, archive_id, cid, int(r.row["start_time_90k"]),
                                 int(r.row["wall_duration_90k"]),
                                 int(r.row["sample_file_bytes"]), r.sha256, now)
                if raw_archive.recording_row_exists(conn, cid):
                    present += 1
                    continue
                summary = summarize_index(r.video_index)
                row = dict(r.row, video_index=r.video_index,
                           **dict(zip(raw.SUMMARY_COLUMN_NAMES, raw.summary_values(summary),
                                      strict=True)))
                raw_archive.insert_archive_only(conn, row)
                added.append((sid, int(r.row["start_time_90k"]),
                              int(r.row["wall_duration_90k"]), int(r.row["sample_file_bytes"])))
                restored += 1
                media = int(r.row["wall_duration_90k"]) + int(r.row["media_duration_delta_90k"])
                old = counters.get(sid, (have.cum_recordings, have.cum_media_duration_90k,
                                         have.cum_runs))
                counters[sid] = (
                    max(old[0], (cid & 0xFFFFFFFF) + 1),
                    max(old[1], int(r.row["prev_media_duration_90k"]) + media),
                    max(old[2], int(r.row["prev_runs"]) + 1),
                )
            raw_archive.change_archive_only_days(conn, added, self.tz, 1)
            for sid, (n, media, runs) in counters.items():
                raw.update_stream_counters(conn, sid, n, media, runs)
            streams = sorted(a.streams | set(new_streams))
            raw_archive.set_archive_streams(conn, archive_id, streams)
        for cam in new_cams.values():
            self.cameras[cam.id] = cam
        self.streams.update(new_streams)
        self._archive_only_changed(added, 1)
        for sid, (n, media, runs) in counters.items():
            s = self.streams[sid]
            s.cum_recordings, s.cum_media_duration_90k, s.cum_runs = n, media, runs
        a.streams = set(streams)
        return RestoreResult(restored, present, len(new_cams), len(new_streams))
