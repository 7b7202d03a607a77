"""The catalog part of ``Database``: sample-file directories, cameras, streams and video
sample entries.

What belongs here: loading them (with each directory's garbage and each stream's
committed summary, from ``recording_day``) when the database opens, and every change to
them, each in one transaction and then in memory; lookups by name and uuid. Not here:
recordings (the ``lifecycle`` and ``reads`` mixins).
"""

from __future__ import annotations

import logging
import uuid as uuidlib

from nvr.base import errors
from nvr.db import raw, raw_archive, raw_evidence, raw_signals
from nvr.db.core import DatabaseCore
from nvr.db.recording import VideoSampleEntry
from nvr.db.stream_summary import DayTotal, StreamSummary, day_rows, zone_key
from nvr.db.types import (
    MAX_RECORDING_WALL_DURATION,
    STREAM_TYPES,
    Camera,
    CameraConfig,
    ProtectedRange,
    SampleFileDirRow,
    Stream,
    StreamConfig,
)

log = logging.getLogger(__name__)


class Catalog(DatabaseCore):
    """``Database``'s catalog operations; see the module docstring."""

    def _load(self) -> None:
        conn = self._conn
        for dir_id, path, u, last in raw.list_dirs(conn):
            self.dirs[dir_id] = SampleFileDirRow(dir_id, path, uuidlib.UUID(bytes=bytes(u)), last)
        for dir_id, cid in raw.list_all_garbage(conn):
            self.dirs[dir_id].garbage_needs_unlink.add(cid)
        for cam_id, u, name, desc, cfg in raw.list_cameras(conn):
            self.cameras[cam_id] = Camera(
                cam_id, uuidlib.UUID(bytes=bytes(u)), name, desc, CameraConfig.from_json(cfg)
            )
        for sid, cam_id, dir_id, type_, cfg, cum_rec, cum_media, cum_runs in raw.list_streams(
            conn
        ):
            stream = Stream(
                sid, cam_id, type_, dir_id, StreamConfig.from_json(cfg), cum_rec, cum_media,
                cum_runs,
            )
            self.streams[sid] = stream
            self.cameras[cam_id].streams[type_] = sid
        self._load_summaries()
        for row in raw_evidence.list_protected_ranges(conn, None, removed=False):
            pr = ProtectedRange(*row)
            self.protected.setdefault(pr.camera_id, []).append(pr)
        for eid, w, h, codec, data, ph, pv in raw.list_video_sample_entries(conn):
            entry = VideoSampleEntry(w, h, codec, bytes(data), ph, pv)
            self.video_sample_entries[eid] = entry
            self._entry_ids[entry.data] = eid

    def _load_summaries(self) -> None:
        """Each stream's committed summary from ``recording_day`` (a few rows per stream
        and day) and two index seeks for its time range; never every recording, unless
        the rows are missing or split in another zone: then one scan builds them (and,
        read-write, stores them for the next opens)."""
        conn = self._conn
        zone = zone_key(self.tz)
        if raw.recording_day_zone(conn) == zone:
            for table in raw.DAY_TABLES:
                days: dict[int, dict[str, DayTotal]] = {}
                for sid, day, *totals in raw.list_recording_days(conn, table):
                    days.setdefault(sid, {})[day] = DayTotal(*totals)
                for sid, stream in self.streams.items():
                    if table == "recording_day":
                        stream.committed = StreamSummary.from_days(
                            days.get(sid, {}),
                            *raw.recording_time_range(conn, sid, MAX_RECORDING_WALL_DURATION),
                        )
                    else:
                        stream.archive_only = StreamSummary.from_days(
                            days.get(sid, {}), None, None)
            return
        n = 0
        for sid, stream in self.streams.items():
            for start, wall, nbytes in raw.stream_summary_rows(conn, sid):
                stream.committed.add(start, wall, nbytes, self.tz)
                n += 1
            for start, wall, nbytes in raw_archive.archive_only_summary_rows(conn, sid):
                stream.archive_only.add(start, wall, nbytes, self.tz)
                n += 1
        if n:
            log.info("built the per-day totals of %d recordings (time zone %s)", n, zone)
        if not self.read_only:
            with self._transaction("storing per-day totals") as wconn:
                raw.replace_recording_days(
                    wconn, zone,
                    [(sid, *row) for sid, s in self.streams.items()
                     for row in day_rows(s.committed.days)],
                    [(sid, *row) for sid, s in self.streams.items()
                     for row in day_rows(s.archive_only.days)])

    # -- sample file dirs -------------------------------------------------------------

    def add_sample_file_dir(self, path: str, dir_uuid: uuidlib.UUID) -> SampleFileDirRow:
        if any(d.path == path for d in self.dirs.values()):
            raise errors.AlreadyExists(f"sample file directory {path} is already configured")
        with self._transaction(f"adding sample file directory {path}") as conn:
            dir_id = raw.insert_dir(conn, path, dir_uuid.bytes)
        d = SampleFileDirRow(dir_id, path, dir_uuid, None)
        self.dirs[dir_id] = d
        return d

    def remove_sample_file_dir(self, dir_id: int) -> None:
        d = self._dir(dir_id)
        if self.streams_in_dir(dir_id) or d.garbage_needs_unlink or d.garbage_unlinked:
            raise errors.FailedPrecondition(
                f"sample file directory {d.path} is still used by streams or holds garbage"
            )
        with self._transaction(f"removing sample file directory {d.path}") as conn:
            raw.delete_dir(conn, dir_id)
        del self.dirs[dir_id]

    def complete_dir_open(self, dir_id: int) -> None:
        """Step 2 of the open interlock: the directory is now owned by this open."""
        assert self.open_id is not None
        with self._transaction("completing sample file directory open") as conn:
            raw.set_dir_last_complete_open(conn, dir_id, self.open_id)
        self.dirs[dir_id].last_complete_open_id = self.open_id

    def open_uuid_of(self, open_id: int) -> uuidlib.UUID | None:
        with self._read("looking up an open") as conn:
            u = raw.get_open_uuid(conn, open_id)
        return None if u is None else uuidlib.UUID(bytes=u)

    def streams_in_dir(self, dir_id: int) -> list[Stream]:
        return [s for s in self.streams.values() if s.sample_file_dir_id == dir_id]

    # -- cameras and streams ------------------------------------------------------------

    def add_camera(
        self,
        short_name: str,
        *,
        description: str = "",
        config: CameraConfig | None = None,
        streams: dict[str, tuple[int | None, StreamConfig]] | None = None,
    ) -> Camera:
        """Adds a camera and its streams (type -> (sample file dir id, config)) at once."""
        config = config or CameraConfig()
        streams = streams or {}
        self._check_camera_fields(short_name, None, streams)
        cam_uuid = uuidlib.uuid4()
        stream_ids: dict[str, int] = {}
        with self._transaction(f"adding camera {short_name}") as conn:
            cam_id = raw.insert_camera(
                conn, cam_uuid.bytes, short_name, description, config.to_json()
            )
            for type_, (dir_id, scfg) in streams.items():
                stream_ids[type_] = raw.insert_stream(conn, cam_id, dir_id, type_, scfg.to_json())
        cam = Camera(cam_id, cam_uuid, short_name, description, config, dict(stream_ids))
        self.cameras[cam_id] = cam
        for type_, sid in stream_ids.items():
            dir_id, scfg = streams[type_]
            self.streams[sid] = Stream(sid, cam_id, type_, dir_id, scfg, 0, 0, 0)
        return cam

    def _check_camera_fields(
        self,
        short_name: str,
        camera_id: int | None,
        streams: dict[str, tuple[int | None, StreamConfig]],
    ) -> None:
        if not 1 <= len(short_name) <= 64:
            raise errors.InvalidArgument("camera name must be 1 to 64 characters")
        for c in self.cameras.values():
            if c.short_name == short_name and c.id != camera_id:
                raise errors.AlreadyExists(f"a camera named {short_name!r} already exists")
        for type_, (dir_id, scfg) in streams.items():
            if type_ not in STREAM_TYPES:
                raise errors.InvalidArgument(f"stream type must be one of {STREAM_TYPES}")
            scfg.validate()
            if dir_id is not None and dir_id not in self.dirs:
                raise errors.NotFound(f"no sample file directory with id {dir_id}")
            if scfg.mode == "record" and dir_id is None:
                raise errors.InvalidArgument(f"{type_} stream records but has no directory")

    def update_camera(
        self,
        camera_id: int,
        *,
        short_name: str | None = None,
        description: str | None = None,
        config: CameraConfig | None = None,
        streams: dict[str, tuple[int | None, StreamConfig]] | None = None,
    ) -> Camera:
        """Changes a camera and adds or reconfigures streams. Moving a stream that has
        recordings to another directory is refused."""
        cam = self._camera(camera_id)
        short_name = cam.short_name if short_name is None else short_name
        description = cam.description if description is None else description
        config = cam.config if config is None else config
        streams = streams or {}
        self._check_camera_fields(short_name, camera_id, streams)
        for type_, (dir_id, _) in streams.items():
            sid = cam.streams.get(type_)
            if sid is not None:
                s = self.streams[sid]
                has_video = s.committed.num_recordings > 0 or s.pending
                if has_video and dir_id != s.sample_file_dir_id:
                    raise errors.FailedPrecondition(
                        f"{type_} stream has recordings; it cannot move to another directory"
                    )
        new_ids: dict[str, int] = {}
        with self._transaction(f"updating camera {short_name}") as conn:
            raw.update_camera(conn, camera_id, short_name, description, config.to_json())
            for type_, (dir_id, scfg) in streams.items():
                sid = cam.streams.get(type_)
                if sid is None:
                    new_ids[type_] = raw.insert_stream(
                        conn, camera_id, dir_id, type_, scfg.to_json()
                    )
                else:
                    raw.update_stream(conn, sid, dir_id, scfg.to_json())
        cam.short_name, cam.description, cam.config = short_name, description, config
        for type_, (dir_id, scfg) in streams.items():
            if type_ in new_ids:
                sid = new_ids[type_]
                cam.streams[type_] = sid
                self.streams[sid] = Stream(sid, camera_id, type_, dir_id, scfg, 0, 0, 0)
            else:
                s = self.streams[cam.streams[type_]]
                s.sample_file_dir_id, s.config = dir_id, scfg
        return cam

    def delete_camera(self, camera_id: int) -> None:
        """Deletes a camera and its streams. Refused while any stream has recordings
        (delete them first: ``plan_delete_all_recordings``)."""
        cam = self._camera(camera_id)
        for sid in cam.streams.values():
            s = self.streams[sid]
            if s.committed.num_recordings or s.pending or s.planned_deletions:
                raise errors.FailedPrecondition(
                    f"camera {cam.short_name!r} still has recordings; delete them first"
                )
        with self._transaction(f"deleting camera {cam.short_name}") as conn:
            raw_evidence.delete_camera_protected_ranges(conn, camera_id)
            for sid in cam.streams.values():
                self._delete_stream_redactions(conn, sid)
                # its archived objects stay in the bucket (``nvr archive restore``) until
                # the archive's own retention deletes them: it needs their keys
                raw_archive.remember_stream_keys(conn, sid, cam.uuid.bytes,
                                                 self.streams[sid].type)
                raw_archive.delete_stream_archive_only(conn, sid)
                raw.delete_stream(conn, sid)
            raw_signals.delete_camera_signal_links(conn, camera_id)  # signals stay, untied
            raw.delete_camera(conn, camera_id)
        for sid in cam.streams.values():
            del self.streams[sid]
            self._forget_stream_archives(sid)
        del self.cameras[camera_id]
        self.protected.pop(camera_id, None)
        self._forget_camera_signals(camera_id)

    def camera_by_uuid(self, u: uuidlib.UUID) -> Camera:
        for c in self.cameras.values():
            if c.uuid == u:
                return c
        raise errors.NotFound(f"no camera {u}")

    def camera_by_name(self, name: str) -> Camera:
        for c in self.cameras.values():
            if c.short_name == name:
                return c
        raise errors.NotFound(f"no camera named {name!r}")

    # -- video sample entries -------------------------------------------------------------

    def insert_video_sample_entry(self, entry: VideoSampleEntry) -> int:
        """Returns the id of an identical stored entry, inserting it if new."""
        existing = self._entry_ids.get(entry.data)
        if existing is not None:
            stored = self.video_sample_entries[existing]
            if stored != entry:
                raise errors.FailedPrecondition(
                    f"sample entry {existing} has the same codec data but different fields"
                )
            return existing
        with self._transaction("inserting a video sample entry") as conn:
            eid = raw.insert_video_sample_entry(
                conn,
                entry.width,
                entry.height,
                entry.rfc6381_codec,
                entry.data,
                entry.pasp_h_spacing,
                entry.pasp_v_spacing,
            )
        self.video_sample_entries[eid] = entry
        self._entry_ids[entry.data] = eid
        return eid
