"""Reading archived recordings' sample bytes back: ranged GETs with read-ahead.

``ArchiveReads`` is what a server holds to read from its archives: one ``ObjectStore`` per
archive (by archive id) and one bounded pool of GET threads shared by every response, so
however many clients download from the archive at once, at most ``workers`` GETs are in
flight. ``object_key`` says which object holds a recording (the first archive holding
it whose store is open).

``Prefetcher`` serves one response. It is given, up front, the byte ranges of objects the
response will read, in order (its ``plan``: the ``view.mp4`` layout's slices of archived
recordings, clipped to the requested range), cut into windows of at most ``window``
bytes; it keeps the next ``ahead`` windows' GETs running in the pool while the response
sends the current one, across recordings, so one response holds at most
``(ahead + 1) * window`` bytes and the network's round trips overlap the sending.
A read the plan did not foresee is one GET of its own. Reads block (they wait for a
GET): callers in trio go through ``nvr.base.blocking.run_blocking``. Errors are the
store's ``NvrError`` kinds (``Unavailable`` when the server goes away mid-download).

What belongs here: ranged reads of archived objects. Not: where a recording's bytes
live (the web layer asks ``ListedRecording.archive_only``), uploads (``uploader``).
"""

from __future__ import annotations

import collections
import concurrent.futures
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nvr.archive import layout
from nvr.archive.client import ObjectStore, OpenStore, open_s3
from nvr.base import errors
from nvr.db.database import Database

#: bytes per GET: as the web layer's chunk (a read is then one window)
WINDOW = 4 << 20
#: windows fetched ahead of the one being read, per response
AHEAD = 3
#: GETs in flight at once, all responses together
WORKERS = 8


@dataclass(frozen=True, slots=True)
class ObjectRange:
    """Bytes ``[start, end)`` of recording ``composite_id``'s sample object ``key``."""

    composite_id: int
    key: str
    start: int
    end: int


class ArchiveReads:
    """The archives a server reads from; see the module docstring. ``close`` when done."""

    def __init__(self, stores: Mapping[int, ObjectStore], *, workers: int = WORKERS,
                 window: int = WINDOW, ahead: int = AHEAD) -> None:
        self.stores = dict(stores)
        self.window = window
        self.ahead = ahead
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="archive-get"
        )

    def object_key(self, db: Database, cid: int) -> tuple[int, str]:
        """(archive id, key) of the recording's sample object in the first archive that
        holds it and that this server reads; trio thread (it asks the database)."""
        held = db.archives_holding(cid)
        for aid in held:
            if aid in self.stores and aid in db.archives:
                stream = db.streams[cid >> 32]
                cam = db.cameras[stream.camera_id]
                prefix = db.archives[aid].config.prefix
                return aid, layout.recording_keys(prefix, cam.uuid, stream.type, cid)[0]
        if held:
            names = ", ".join(db.archives[a].short_name for a in held if a in db.archives)
            raise errors.Unavailable(
                f"recording {cid:016x} is only in archive {names or '(removed)'}, "
                "which this server does not read"
            )
        raise errors.NotFound(f"recording {cid:016x} is in no archive")

    def prefetcher(self, archive_of: Mapping[int, int],
                   plan: Sequence[ObjectRange]) -> Prefetcher:
        """A reader for one response: ``archive_of`` maps each recording it may read to
        its archive (``object_key``), ``plan`` the ranges it will read, in order."""
        return Prefetcher(self, archive_of, plan)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


@dataclass(slots=True)
class _Window:
    cid: int
    key: str
    start: int
    end: int
    future: concurrent.futures.Future[bytes] | None = None


class Prefetcher:
    """Reads for one response; see the module docstring. Not thread-safe: its calls
    come one at a time (the response's reads, each awaited, then ``close``); the pool's
    threads touch only their own window's future."""

    def __init__(self, reads: ArchiveReads, archive_of: Mapping[int, int],
                 plan: Sequence[ObjectRange]) -> None:
        self._reads = reads
        self._archive_of = dict(archive_of)
        self._keys = {r.composite_id: r.key for r in plan}
        self._windows: collections.deque[_Window] = collections.deque()
        w = reads.window
        for r in plan:
            for lo in range(r.start, r.end, w):
                self._windows.append(_Window(r.composite_id, r.key, lo, min(r.end, lo + w)))
        self.gets = 0  # GETs started (tests)
        # nothing starts before the first read: the file's header goes out first, without
        # these threads competing for the interpreter

    def holds(self, cid: int) -> bool:
        """Whether the recording is read from the archive."""
        return cid in self._archive_of

    def _store(self, cid: int) -> ObjectStore:
        try:
            return self._reads.stores[self._archive_of[cid]]
        except KeyError:
            raise errors.NotFound(f"recording {cid:016x}: no archive to read it from") from None

    def _get(self, cid: int, key: str, start: int, end: int) -> bytes:
        self.gets += 1
        return self._store(cid).get_range(key, start, end)

    def _top_up(self) -> None:
        """Starts the GETs of the current window and the ``ahead`` after it."""
        for i, win in enumerate(self._windows):
            if i > self._reads.ahead:
                break
            if win.future is None:
                win.future = self._reads._pool.submit(
                    self._get, win.cid, win.key, win.start, win.end
                )

    def _drop_first(self) -> None:
        win = self._windows.popleft()
        if win.future is not None:
            win.future.cancel()

    def read(self, cid: int, offset: int, length: int) -> bytes:
        """Bytes ``[offset, offset + length)`` of the recording's sample object."""
        out = bytearray()
        pos, end = offset, offset + length
        while pos < end:
            k = next((i for i, w in enumerate(self._windows)
                      if w.cid == cid and w.start <= pos < w.end), None)
            if k is None:
                win = None
            else:
                for _ in range(k):
                    self._drop_first()  # passed over: the response skipped them
                win = self._windows[0]
                self._top_up()
            if win is None:  # not foreseen: a GET of its own
                key = self._keys.get(cid)
                if key is None:
                    raise errors.NotFound(f"recording {cid:016x} is not in this response")
                out += self._get(cid, key, pos, end)
                break
            assert win.future is not None
            try:
                data = win.future.result()
            except concurrent.futures.CancelledError:
                raise errors.Unavailable("archive read cancelled (server shutting down)") from None
            take = min(end, win.end)
            out += data[pos - win.start : take - win.start]
            pos = take
            if take == win.end:
                self._windows.popleft()
                self._top_up()
        return bytes(out)

    def close(self) -> None:
        """Cancels the GETs not started; the running ones' bytes are dropped."""
        while self._windows:
            self._drop_first()


def open_archive_reads(db: Database, open_store: OpenStore = open_s3, **kw: int) -> ArchiveReads:
    """``ArchiveReads`` over a store per archive of the database (none connects yet);
    ``kw``: ``ArchiveReads``'s ``workers``, ``window``, ``ahead``. Each client keeps as
    many connections as there are GET threads (fewer: the pool would open a new
    connection for each GET beyond them and close it after). The daemon's supervisor
    replaces an archive's store when its configuration changes."""
    workers = kw.get("workers", WORKERS)
    stores = {aid: open_store(a.config, workers) for aid, a in sorted(db.archives.items())}
    return ArchiveReads(stores, **kw)
