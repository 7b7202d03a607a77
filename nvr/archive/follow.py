"""The follower: a read-only second site keeps up with another site's archive by itself.

``nvr run --read-only`` on a database with an archive attached (typically made by ``nvr
archive restore``) runs one follower per archive (``start_followers``): every
``archive_follow_interval_sec`` (``Clocks``) a pass

1. lists the archive's tombstones (``{prefix}tombstones/``: one LIST, as many keys as
   there are redactions), GETs the ones it has not seen, and forgets every recording it
   holds that a new one covers (``Database.forget_archived``: the archive-only row goes
   with it, so it is gone from listings and playback at once);
2. lists the cameras (``{prefix}`` with delimiter ``/``) and each camera's streams
   (``{prefix}{camera}/``): new cameras and streams are found here;
3. lists each stream's keys from a window before the last recording it knows on (a
   LIST with ``StartAfter``: the keys are the zero-padded recording ids, in order), GETs
   the descriptions it does not hold yet and adds them, with their sample entries and
   any new camera or stream, as archive-only recordings (what ``nvr archive restore``
   does: ``restore.read_descriptions``, ``restore.add_descriptions``).

So a pass costs a LIST per camera and per stream plus the keys of ``WINDOW`` recordings
per stream and the new ones: it does not grow with the archive's size (its first pass on
an empty database reads everything: that is a restore). The window is there because the
uploader writes up to ``BATCH`` recordings concurrently, so a recording's description
may appear after a later one's; ``2 * BATCH`` recordings behind the last one seen covers
that. What it does not see: recordings the first site's archive retention deletes (their
rows stay until ``nvr archive restore`` or ``check --archive`` is run; playback of one is
a 404 from the archive).

The database is open read-write for this (only archive-only rows, their cameras,
streams and sample entries are written); the follower writes nothing to the archive.
Failures (server down, wrong credentials) are logged at most once a minute and the pass
is tried again at the next interval; nothing is lost, the next pass starts from what the
database holds.

What belongs here: the poll loop and what a pass lists. Not: reading descriptions
(``restore``), key names (``layout``, ``tombstones``).
"""

from __future__ import annotations

import logging
import uuid as uuidlib
from dataclasses import dataclass

import trio

from nvr.archive import layout, restore, tombstones
from nvr.archive.client import ObjectInfo, ObjectStore, S3Store, StoreConfig
from nvr.archive.uploader import BATCH
from nvr.base import errors
from nvr.base.blocking import run_blocking
from nvr.base.clock import Clocks
from nvr.base.log_limit import RateLimitedLog
from nvr.base.time90k import Duration
from nvr.db.database import Database
from nvr.db.raw import composite_id

log = logging.getLogger(__name__)

#: recordings before the last one known whose keys each pass lists again
WINDOW = 2 * BATCH
_STREAM_TYPES = ("main", "sub", "ext")


@dataclass(slots=True)
class FollowerCounters:
    passes: int = 0
    added: int = 0  # recordings added
    hidden: int = 0  # recordings forgotten under a new tombstone
    last_error: str | None = None


@dataclass(slots=True)
class _StreamDir:
    camera_uuid: uuidlib.UUID
    stream_type: str
    #: the next recording id to expect (None: ask the database)
    next_id: int | None = None


class Follower:
    """Follows one archive; see the module docstring."""

    def __init__(self, db: Database, archive_id: int, store: ObjectStore, clocks: Clocks,
                 interval: Duration) -> None:
        self._db = db
        self.archive_id = archive_id
        self._store = store
        self._clocks = clocks
        self._interval = interval
        self._log = RateLimitedLog(clocks, log)
        #: tombstones seen, by key
        self._stones: dict[str, tombstones.Tombstone] = {}
        self._dirs: dict[str, _StreamDir] = {}  # by stream prefix
        self.counters = FollowerCounters()
        self.passed = trio.Event()  # set after each pass (a new one then)

    @property
    def name(self) -> str:
        return self._db.archives[self.archive_id].short_name

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """A pass, then one every interval, until cancelled."""
        task_status.started()
        while True:
            try:
                await self.run_once()
                self.counters.last_error = None
            except errors.NvrError as e:
                self.counters.last_error = str(e)
                self._log(f"archive {self.name}: following failed, will try again: {e}")
            self.counters.passes += 1
            passed, self.passed = self.passed, trio.Event()
            passed.set()
            await self._clocks.sleep(self._interval)

    async def run_once(self) -> int:
        """One pass; returns how many recordings it added."""
        prefix = self._db.archives[self.archive_id].config.prefix
        await self._apply_tombstones(prefix)
        cameras = await run_blocking(self._store.list_dirs, prefix, abandon_on_cancel=True)
        for cam_dir in cameras:
            try:
                cam_uuid = uuidlib.UUID(cam_dir[len(prefix):-1])
            except ValueError:
                continue  # tombstones/, or not ours
            for stream_dir in await run_blocking(self._store.list_dirs, cam_dir,
                                                 abandon_on_cancel=True):
                type_ = stream_dir[len(cam_dir):-1]
                if type_ in _STREAM_TYPES and stream_dir not in self._dirs:
                    self._dirs[stream_dir] = _StreamDir(cam_uuid, type_)
        added = 0
        for sp, d in sorted(self._dirs.items()):
            added += await self._follow_stream(prefix, sp, d)
        if added:
            log.info("archive %s: %d new recordings", self.name, added)
        self.counters.added += added
        return added

    def _local_stream(self, camera_uuid: uuidlib.UUID, stream_type: str) -> int | None:
        try:
            return self._db.camera_by_uuid(camera_uuid).streams.get(stream_type)
        except errors.NotFound:
            return None

    async def _apply_tombstones(self, prefix: str) -> None:
        listed = await run_blocking(lambda: list(self._store.list(prefix + tombstones.DIR)),
                                    abandon_on_cancel=True)
        for o in listed:
            if o.key in self._stones:
                continue
            if o.size > tombstones.MAX_BYTES:
                raise errors.DataLoss(f"{o.key}: {o.size} bytes is not a tombstone object")
            data = await run_blocking(self._store.get_range, o.key, 0, o.size,
                                      abandon_on_cancel=True)
            try:
                t = tombstones.Tombstone.from_json(data)
            except errors.DataLoss as e:
                raise errors.DataLoss(f"{o.key}: {e}") from e
            sid = self._local_stream(t.camera_uuid, t.stream_type)
            if sid is not None:
                cids = self._db.archived_overlapping(
                    self.archive_id, sid, t.start_time_90k, t.end_time_90k)
                if cids:
                    self._db.forget_archived(self.archive_id, cids)
                    self.counters.hidden += len(cids)
                    log.info("archive %s: %d recordings hidden by redaction %d of %s",
                             self.name, len(cids), t.redaction_id, t.database_uuid)
            self._stones[o.key] = t

    async def _follow_stream(self, prefix: str, sp: str, d: _StreamDir) -> int:
        sid = self._local_stream(d.camera_uuid, d.stream_type)
        if d.next_id is None:
            last = None if sid is None else self._db.last_archived_id(self.archive_id, sid)
            d.next_id = 0 if last is None else (last & 0xFFFFFFFF) + 1
        lo = max(0, d.next_id - WINDOW)
        held = (set() if sid is None
                else self._db.archived_ids_from(self.archive_id, sid, lo))
        objects: list[ObjectInfo] = await run_blocking(
            lambda: list(self._store.list(sp, f"{sp}{lo:010d}" if lo else "")),
            abandon_on_cancel=True)
        stones = list(self._stones.values())

        def skip(key: str) -> bool:
            return sid is not None and composite_id(sid, _recording_id(sp, key)) in held

        def hidden(desc: layout.Description) -> bool:
            start = int(desc.row["start_time_90k"])
            return tombstones.covered(stones, desc.camera_uuid, desc.stream_type, start,
                                      start + int(desc.row["wall_duration_90k"]))

        found = await run_blocking(
            lambda: restore.read_descriptions(self._store, prefix, objects, hidden=hidden,
                                              skip=skip),
            abandon_on_cancel=True)
        for p in found.problems:
            self._log(f"archive {self.name}: {p}")
        for o in objects:
            if o.key.endswith(".json"):
                d.next_id = max(d.next_id, _recording_id(sp, o.key) + 1)
        if not found.descriptions:
            return 0
        result = restore.add_descriptions(
            self._db, self.archive_id, found.descriptions, self._clocks.realtime())
        return result.restored


def _recording_id(stream_prefix: str, key: str) -> int:
    rest = key[len(stream_prefix):].split(".", 1)[0]
    return int(rest) if rest.isdigit() else -1


async def start_followers(nursery: trio.Nursery, db: Database, clocks: Clocks,
                          interval: Duration) -> dict[int, Follower]:
    """Starts a follower per archive in ``nursery`` (a read-only daemon's core nursery)."""
    out: dict[int, Follower] = {}
    for aid, a in sorted(db.archives.items()):
        c = a.config
        store = S3Store(StoreConfig(c.endpoint, c.bucket, c.access_key, c.secret_key, c.region))
        out[aid] = Follower(db, aid, store, clocks, interval)
        await nursery.start(out[aid].run)
        log.info("archive %s: following it every %.0f s", a.short_name, interval / 90_000)
    return out
