"""The uploader: one task per archive that copies committed recordings to it.

Each pass asks the database for the oldest committed recordings of the archive's streams
that it does not hold yet (``Database.unarchived``) and, one at a time, oldest first:

1. reads the sample file (through the storage layer, in a worker thread) computing its
   MD5 and SHA-256; a SHA-256 that differs from the one the writer stored is ``DataLoss``
   (the local file changed: it is not sent);
2. waits for the rate cap (``max_rate``: the next upload starts no earlier than the last
   one's start plus its bytes over the rate, so the average over objects stays under it);
3. PUTs the sample object with both digests (the server refuses a body that does not
   match them), then the description object (``layout.describe``);
4. only then records it as archived (``Database.mark_archived``, one transaction per
   batch, also when cancelled): a recording is never recorded as archived before both
   objects are complete. After a restart the next pass
   starts from whatever is not recorded, so an upload cut short is simply done again
   (PUT replaces the object whole: an object is never half-written).

A recording deleted locally before it was archived (retention got there first) is
skipped (the flush that deleted it counted it: ``Database.never_archived``). Any other
failing step is retried, forever, with capped exponential backoff (1 s to 5 min); the
first failure of each streak and then at most one line a minute is logged
(``RateLimitedLog``); ``status`` says healthy, or failing since when with which error and
how many attempts. Uploads run in worker threads and are
abandoned on cancellation (the daemon's shutdown): nothing is marked, the next start
uploads the recording again. The uploader never holds anything recording needs: it reads
committed files and writes its own rows in short transactions.

After each batch it applies the archive's own retention (``retain_bytes`` per stream,
``retain_days``) to every stream it holds recordings of (a deleted camera's too, under
the keys kept when it was deleted): the oldest recordings of each stream go first, their
description object before their sample object, and their row last; the stream's
``expired_through_id`` then says never to upload them again while they are still local.

When nothing is left it waits for the next flush (``Database.flush_listeners``).
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import IO, TypeVar

import trio
import trio_util

from nvr.archive import layout, tombstones
from nvr.archive.client import ObjectStore, probe_checksums
from nvr.base import errors
from nvr.base.blocking import run_blocking
from nvr.base.clock import Clocks
from nvr.base.log_limit import LOG_EVERY, RateLimitedLog
from nvr.base.time90k import UNITS_PER_SEC, Duration, Time
from nvr.db.archives import UnarchivedRecording
from nvr.db.database import Database
from nvr.db.raw import split_composite_id
from nvr.db.types import ListedRecording
from nvr.storage.dir import SampleFileDir
from nvr.storage.reader import SampleFile

log = logging.getLogger(__name__)
T = TypeVar("T")

#: recordings asked of the database per pass
BATCH = 32
#: uploads in flight at once per archive (rclone's default is 4 transfers)
CONCURRENCY = 4
_CHUNK = 1 << 20
#: recordings up to this size are read into memory once (hashed, then sent from there)
IN_MEMORY = 64 << 20

#: opens a committed recording's sample file by composite id (``NotFound`` if gone)
OpenSample = Callable[[int], SampleFile]


@dataclass(frozen=True, slots=True)
class UploaderStatus:
    """What the uploader is doing, for ``/api/`` and metrics."""

    failing_since: Time | None = None  # wall time of the first failure of this streak
    last_error: str | None = None
    attempts: int = 0

    @property
    def ok(self) -> bool:
        return self.failing_since is None


@dataclass(frozen=True, slots=True)
class Skipped:
    """A recording the uploader will not archive (its local file changed since it was
    written): the alarm's detail."""

    composite_id: int
    since: Time
    reason: str


class _PreadReader(io.RawIOBase):
    """A seekable file object over ``SampleFile.pread`` (what boto3 reads a body from)."""

    def __init__(self, f: SampleFile, size: int) -> None:
        self._f, self._size, self._pos = f, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(buf), self._size - self._pos)
        if n <= 0:
            return 0
        data = self._f.pread(self._pos, n)
        if len(data) != n:
            raise errors.DataLoss(f"sample file shorter than its row ({self._size} bytes)")
        buf[:n] = data
        self._pos += n
        return n


class Uploader:
    """The uploader of one archive. See the module docstring."""

    def __init__(
        self,
        db: Database,
        archive_id: int,
        store: ObjectStore,
        open_sample: OpenSample,
        clocks: Clocks,
        *,
        initial_backoff: Duration = UNITS_PER_SEC,
        max_backoff: Duration = 300 * UNITS_PER_SEC,
        batch: int = BATCH,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self._db = db
        self.archive_id = archive_id
        self._store = store
        self._open_sample = open_sample
        self._clocks = clocks
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._batch = batch
        self._concurrency = max(1, concurrency)
        self._poke = trio.Event()
        self._next_start: Duration = 0
        self._log = RateLimitedLog(clocks, log, logging.ERROR)
        self.status = trio_util.AsyncValue(UploaderStatus())
        #: uploaded (both objects accepted), not yet recorded: one commit per batch
        self._done: list[tuple[ListedRecording, bytes]] = []
        self.uploaded = 0  # recordings archived by this task
        self.uploaded_bytes = 0
        #: recordings not archived because their local file changed (the alarm), by id
        self.skipped: dict[int, Skipped] = {}
        self._skip_log = RateLimitedLog(clocks, log, logging.ERROR)
        #: whether the server verifies the SHA-256 sent on PUT (None: not probed yet)
        self._server_verifies_sha256: bool | None = None
        #: redaction ids whose tombstone this archive holds (None: not listed yet)
        self._tombstones_written: set[int] | None = None
        #: redaction ids whose archived recordings were deleted (this run)
        self._tombstones_applied: set[int] = set()
        db.flush_listeners.append(self._poke_now)
        db.redaction_listeners.append(self._poke_now)

    @property
    def name(self) -> str:
        return self._db.archives[self.archive_id].short_name

    def _poke_now(self) -> None:
        self._poke.set()

    def detach(self) -> None:
        """Stops listening to the database (once ``run`` has ended: the archive was
        removed or changed, ``nvr.supervisor``)."""
        for listeners in (self._db.flush_listeners, self._db.redaction_listeners):
            if self._poke_now in listeners:
                listeners.remove(self._poke_now)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Uploads until cancelled; reports started at once. Cancellation abandons the
        upload in flight (it is not recorded, so it is done again after a restart)."""
        task_status.started()
        while True:
            self._poke = trio.Event()
            if not await self.run_once():
                # while the alarm is up, it is logged again once a minute (run_once)
                # even when nothing else happens
                with trio.move_on_at(
                    self._clocks.deadline_after(LOG_EVERY) if self.skipped else math.inf
                ):
                    await self._poke.wait()

    async def run_once(self) -> bool:
        """Writes the tombstones of new redactions and deletes what they cover, uploads one
        batch (``concurrency`` recordings at a time), then applies the archive's
        retention; returns whether there was anything to upload."""
        await self._retry("tombstones", self.apply_tombstones)
        if self._server_verifies_sha256 is None:
            prefix = self._db.archives[self.archive_id].config.prefix
            self._server_verifies_sha256 = await self._retry(
                "probe", lambda: run_blocking(probe_checksums, self._store, prefix,
                                              abandon_on_cancel=True))
        batch = await self._retry("listing", self._sync(
            lambda: self._db.unarchived(self.archive_id, self._batch, self.skipped)))
        try:
            if self._concurrency == 1 or len(batch) < 2:
                for u in batch:
                    await self._retry("upload", lambda u=u: self._upload(u))  # type: ignore[misc]
            else:
                send, receive = trio.open_memory_channel[UnarchivedRecording](len(batch))
                for u in batch:
                    send.send_nowait(u)
                send.close()
                async with trio.open_nursery() as nursery:
                    for _ in range(min(self._concurrency, len(batch))):
                        nursery.start_soon(self._worker, receive.clone())
        finally:
            self._record_done()  # also when cancelled: what is complete is recorded
        await self.apply_retention()
        if self.skipped:
            first = min(self.skipped.values(), key=lambda k: k.composite_id)
            self._skip_log(
                f"archive {self.name}: {len(self.skipped)} recordings not archived: "
                f"{first.reason}" + (" (and others)" if len(self.skipped) > 1 else "")
            )
        return bool(batch)

    async def _worker(self, receive: trio.MemoryReceiveChannel[UnarchivedRecording]) -> None:
        async with receive:
            async for u in receive:
                await self._retry("upload", lambda u=u: self._upload(u))  # type: ignore[misc]

    async def apply_tombstones(self) -> None:
        """Writes the tombstone of every redaction the archive does not hold yet
        (``nvr.archive.tombstones``), then deletes the archived recordings each covers
        (description, sample, row): never a byte deleted before its tombstone is there."""
        redactions = self._db.all_redactions()
        if not redactions or all(r.id in self._tombstones_applied for r in redactions):
            return
        a = self._db.archives[self.archive_id]
        prefix = a.config.prefix
        if self._tombstones_written is None:
            mine = f"{prefix}{tombstones.DIR}{self._db.uuid}/"
            listed = await run_blocking(lambda: list(self._store.list(mine)),
                                        abandon_on_cancel=True)
            self._tombstones_written = {
                int(o.key[len(mine):].removesuffix(".json")) for o in listed
                if o.key.endswith(".json") and o.key[len(mine):-5].isdigit()
            }
        for r in redactions:
            if r.id in self._tombstones_applied:
                continue
            stream = self._db.streams.get(r.stream_id)
            if stream is None:
                continue  # the stream (and its archived rows' meaning) is gone
            cam = self._db.cameras[stream.camera_id]
            if r.id not in self._tombstones_written:
                body = tombstones.Tombstone(
                    self._db.uuid, r.id, cam.uuid, stream.type, r.start_time_90k,
                    r.end_time_90k, r.reason, r.username, r.creation_time_90k,
                ).to_json()
                key = tombstones.tombstone_key(prefix, self._db.uuid, r.id)
                await run_blocking(
                    lambda k=key, b=body: self._store.put(
                        k, io.BytesIO(b), len(b), md5=hashlib.md5(b).digest(),
                        sha256=hashlib.sha256(b).digest()),
                    abandon_on_cancel=True,
                )
                self._tombstones_written.add(r.id)
            covered = self._db.archived_overlapping(
                self.archive_id, r.stream_id, r.start_time_90k, r.end_time_90k)
            for cid in covered:
                for key in reversed(layout.recording_keys(prefix, cam.uuid, stream.type, cid)):
                    await run_blocking(self._store.delete, key, abandon_on_cancel=True)
                self._db.forget_archived(self.archive_id, [cid])
            if covered:
                log.info("archive %s: deleted %d recordings under redaction %d",
                         a.short_name, len(covered), r.id)
            self._tombstones_applied.add(r.id)

    def _record_done(self) -> None:
        if not self._done:
            return
        done, self._done = self._done, []
        self._db.mark_archived(self.archive_id, done, self._clocks.realtime())
        self.uploaded += len(done)
        self.uploaded_bytes += sum(r.sample_file_bytes for r, _ in done)

    async def apply_retention(self) -> int:
        """Deletes from the archive each stream's oldest recordings beyond its
        ``retain_bytes`` or older than ``retain_days`` (description first, then the
        sample, then the row). Returns how many it deleted."""
        c = self._db.archives[self.archive_id].config
        if c.retain_bytes is None and c.retain_days is None:
            return 0
        oldest_allowed = None
        if c.retain_days is not None:
            oldest_allowed = self._clocks.realtime() - c.retain_days * 86_400 * UNITS_PER_SEC
        n = 0
        streams = self._db.archive_retention_streams(self.archive_id)
        for sid, (cam_uuid, stream_type) in sorted(streams.items()):
            held = self._db.archived_in(self.archive_id, sid)
            total = sum(h.sample_file_bytes for h in held)
            for h in held:
                too_big = c.retain_bytes is not None and total > c.retain_bytes
                too_old = (oldest_allowed is not None
                           and h.start_time_90k + h.wall_duration_90k < oldest_allowed)
                if not (too_big or too_old):
                    break
                sample_key, desc_key = layout.recording_keys(
                    c.prefix, cam_uuid, stream_type, h.composite_id
                )
                for key in (desc_key, sample_key):
                    await self._retry(
                        "retention", lambda k=key: run_blocking(self._store.delete, k)  # type: ignore[misc]
                    )
                self._db.expire_archived(self.archive_id, h.composite_id, cam_uuid, stream_type)
                total -= h.sample_file_bytes
                n += 1
        return n

    @staticmethod
    def _sync(fn: Callable[[], T]) -> Callable[[], Awaitable[T]]:
        async def call() -> T:
            await trio.lowlevel.checkpoint()
            return fn()
        return call

    def _still_committed(self, cid: int) -> bool:
        stream_id, rid = split_composite_id(cid)
        return any(r.committed for r in self._db.list_recordings_by_id(stream_id, rid, rid + 1))

    async def _upload(self, u: UnarchivedRecording) -> None:
        rec = u.recording
        cid = rec.composite_id
        a = self._db.archives[self.archive_id]
        stream = self._db.streams[rec.stream_id]
        cam = self._db.cameras[stream.camera_id]
        if self._db.is_hidden(rec.stream_id, rec.start_time_90k,
                              rec.start_time_90k + rec.wall_duration_90k):
            return  # redacted since it was listed: never archived
        try:
            f = await run_blocking(self._open_sample, cid)
        except errors.NotFound:
            if self._still_committed(cid):
                raise
            # counted (and logged) by the flush that deleted it: Database.never_archived
            log.info("archive %s: recording %016x was deleted before it was archived",
                     a.short_name, cid)
            return
        try:
            # With the writer's SHA-256 and a server that verifies it, the bytes are not
            # hashed here: the server checks what it receives against what was written.
            trusted = u.sample_file_sha256 if self._server_verifies_sha256 else None
            data, md5, sha256 = await run_blocking(
                _read_and_hash, f, rec.sample_file_bytes, trusted is None)
            if trusted is not None:
                sha256 = trusted
            elif u.sample_file_sha256 is not None and sha256 != u.sample_file_sha256:
                self._skip(cid, sha256)
                return
            entry = self._db.video_sample_entries[rec.video_sample_entry_id]
            description = layout.describe(
                rec=rec, sha256=sha256, video_index=self._db.get_video_index(cid),
                entry=entry, db_uuid=self._db.uuid,
                open_uuid=self._db.open_uuid_of(rec.open_id), camera_uuid=cam.uuid,
                camera_name=cam.short_name, stream_type=stream.type,
            )
            sample_key, desc_key = layout.recording_keys(
                a.config.prefix, cam.uuid, stream.type, cid
            )
            await self._wait_for_rate(rec.sample_file_bytes + len(description))
            body: IO[bytes] = (
                io.BytesIO(data) if data is not None
                else io.BufferedReader(_PreadReader(f, rec.sample_file_bytes), _CHUNK)
            )
            try:
                await run_blocking(
                    lambda: self._store.put(
                        sample_key, body, rec.sample_file_bytes, md5=md5, sha256=sha256
                    ),
                    abandon_on_cancel=True,
                )
            except errors.DataLoss:
                if trusted is None:
                    raise
                # refused: did the file change since it was written, or the transfer?
                actual = (await run_blocking(_read_and_hash, f, rec.sample_file_bytes,
                                             True))[2]
                if actual != trusted:
                    self._skip(cid, actual)
                    return
                raise
            await run_blocking(
                lambda: self._store.put(
                    desc_key, io.BytesIO(description), len(description),
                    md5=None if self._server_verifies_sha256 else hashlib.md5(description).digest(),
                    sha256=hashlib.sha256(description).digest(),
                ),
                abandon_on_cancel=True,
            )
        finally:
            f.close()
        self._done.append((rec, sha256))

    def _skip(self, cid: int, actual: bytes) -> None:
        reason = (f"sample file {cid:016x} no longer has the SHA-256 recorded when it was "
                  f"written (now {actual.hex()[:16]}...): the local copy changed")
        self.skipped[cid] = Skipped(cid, self._clocks.realtime(), reason)
        self._skip_log(f"archive {self.name}: not archiving it: {reason}")

    async def _wait_for_rate(self, nbytes: int) -> None:
        rate = self._db.archives[self.archive_id].config.max_rate
        now = self._clocks.monotonic()
        if not rate:
            self._next_start = now
            return
        start = max(now, self._next_start)
        # reserved before sleeping: concurrent uploads queue behind one another
        self._next_start = start + nbytes * UNITS_PER_SEC // rate
        if start > now:
            await self._clocks.sleep_until(start)

    # -- retrying --------------------------------------------------------------------------

    async def _retry(self, step: str, fn: Callable[[], Awaitable[T]]) -> T:
        """Runs ``fn`` until it succeeds, sleeping with capped exponential backoff after
        each ``NvrError``. Only ``NvrError`` is retried: anything else is a bug."""
        attempt = 0
        while True:
            try:
                result = await fn()
            except errors.NvrError as e:
                attempt += 1
                prev = self.status.value
                since = prev.failing_since or self._clocks.realtime()
                self.status.value = UploaderStatus(since, f"{step}: {e}", attempt)
                self._log(f"archive {self.name}: {step} failed (attempt {attempt}), "
                          f"will retry: {e}")
                backoff = min(self._initial_backoff << min(attempt - 1, 30), self._max_backoff)
                await self._clocks.sleep(backoff)
                continue
            if attempt:
                self.status.value = UploaderStatus()
                log.warning("archive %s: %s succeeded after %d failed attempts",
                            self.name, step, attempt)
            return result


def _read_and_hash(
    f: SampleFile, size: int, sha256: bool
) -> tuple[bytes | None, bytes | None, bytes]:
    """(the bytes, MD5, SHA-256) of the file's ``size`` bytes, both digests only with
    ``sha256`` (else None and b""); the bytes only up to ``IN_MEMORY`` (then they are sent
    from memory in one piece: boto3 sends a file in 8 KiB writes, which cost more CPU than
    the hashes); ``DataLoss`` if it is shorter."""
    if size <= IN_MEMORY:
        data = f.pread(0, size)
        if len(data) != size:
            raise errors.DataLoss(f"sample file shorter ({len(data)} bytes) than its row ({size})")
        if not sha256:
            return data, None, b""
        return data, hashlib.md5(data).digest(), hashlib.sha256(data).digest()
    if not sha256:
        return None, None, b""  # sent from the file; the server checks the bytes
    md5, sha = hashlib.md5(), hashlib.sha256()
    pos = 0
    while pos < size:
        chunk = f.pread(pos, min(_CHUNK, size - pos))
        if not chunk:
            raise errors.DataLoss(f"sample file shorter ({pos} bytes) than its row ({size})")
        md5.update(chunk)
        sha.update(chunk)
        pos += len(chunk)
    return None, md5.digest(), sha.digest()


def sample_opener(db: Database, dirs: Mapping[int, SampleFileDir]) -> OpenSample:
    """Opens a committed recording's file in the directory of its stream."""

    def open_sample(cid: int) -> SampleFile:
        dir_id = db.streams[split_composite_id(cid)[0]].sample_file_dir_id
        if dir_id is None or dir_id not in dirs:
            raise errors.NotFound(f"recording {cid:016x}: its stream has no open directory")
        return dirs[dir_id].open_for_reading(cid)

    return open_sample
