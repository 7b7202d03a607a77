"""A sample-file directory: its ``meta`` file, the open interlock, and every file operation.

Layout (docs/design.md, "On-disk formats"): one file per recording, named by its composite
id as 16 lowercase hex digits, plus ``meta``: a fixed-size (512-byte) record naming the
database uuid, the directory uuid, the last completed open and the open in progress,
protected by a CRC so a torn write is detected rather than misread.

``SampleFileDir`` is also the local ``SampleFileReader`` (``nvr.storage.reader``): what
reads sample files (web responses, ``nvr check``) opens them with ``open_for_reading``.
All methods of ``SampleFileDir`` are synchronous and may block: callers in trio go through
``nvr.base.blocking.run_blocking``. ``nvr.testing.faults`` subclasses it to inject errors
at any step. ``OSError`` is mapped to ``NvrError`` kinds here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import os
import re
import struct
import uuid as uuidlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nvr.base import errors
from nvr.db.database import Database
from nvr.db.redactions import is_piece
from nvr.storage.reader import SampleFile

META_FILE = "meta"
#: where ``nvr check --trash-orphan-files`` moves files that belong to nothing
TRASH_DIR = "trash"
META_SIZE = 512
_MAGIC = b"nvr-sample-dir\n\0"  # 16 bytes
_META_VERSION = 1
# magic, version, db uuid, dir uuid, last complete (id, uuid), in progress (id, uuid)
_META_STRUCT = struct.Struct(">16sI16s16sQ16sQ16s")
_NAME_RE = re.compile(r"[0-9a-f]{16}")
#: the most buffers one writev takes
_IOV_MAX = os.sysconf("SC_IOV_MAX")


def file_name(composite_id: int) -> str:
    return f"{composite_id:016x}"


@dataclass(frozen=True, slots=True)
class OpenRef:
    """One row of the database's ``open`` table, as the meta file names it."""

    id: int
    uuid: uuidlib.UUID


@dataclass(frozen=True, slots=True)
class DirMeta:
    db_uuid: uuidlib.UUID
    dir_uuid: uuidlib.UUID
    last_complete_open: OpenRef | None = None
    in_progress_open: OpenRef | None = None

    def encode(self) -> bytes:
        def ref(r: OpenRef | None) -> tuple[int, bytes]:
            return (0, bytes(16)) if r is None else (r.id, r.uuid.bytes)

        body = _META_STRUCT.pack(
            _MAGIC, _META_VERSION, self.db_uuid.bytes, self.dir_uuid.bytes,
            *ref(self.last_complete_open), *ref(self.in_progress_open),
        )
        body = body.ljust(META_SIZE - 4, b"\0")
        return body + struct.pack(">I", zlib.crc32(body))

    @classmethod
    def decode(cls, data: bytes, where: str) -> DirMeta:
        if len(data) != META_SIZE:
            raise errors.DataLoss(f"{where}: meta file is {len(data)} bytes, expected {META_SIZE}")
        body, (crc,) = data[:-4], struct.unpack(">I", data[-4:])
        if zlib.crc32(body) != crc:
            raise errors.DataLoss(f"{where}: meta file is corrupt (checksum mismatch)")
        magic, version, db_u, dir_u, last_id, last_u, prog_id, prog_u = _META_STRUCT.unpack_from(
            body
        )
        if magic != _MAGIC:
            raise errors.DataLoss(f"{where}: not an nvr sample file directory meta file")
        if version != _META_VERSION:
            raise errors.FailedPrecondition(f"{where}: meta file version {version} is unknown")

        def ref(i: int, u: bytes) -> OpenRef | None:
            return None if i == 0 else OpenRef(i, uuidlib.UUID(bytes=u))

        return cls(
            uuidlib.UUID(bytes=db_u), uuidlib.UUID(bytes=dir_u),
            ref(last_id, last_u), ref(prog_id, prog_u),
        )


class SampleFileDir:
    """An open, locked sample-file directory. Use ``create`` or ``open``."""

    def __init__(self, path: Path, fd: int, meta: DirMeta) -> None:
        self.path = path
        self._fd = fd
        self.meta = meta

    # -- opening ---------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path | str, db_uuid: uuidlib.UUID, dir_uuid: uuidlib.UUID) -> None:
        """Makes ``path`` (or takes an empty existing directory) a sample-file directory
        of database ``db_uuid``. Refuses a non-empty directory."""
        path = Path(path)
        with errors.mapped_os_errors(f"creating sample file directory {path}"):
            path.mkdir(parents=True, exist_ok=True)
            entries = [e for e in os.listdir(path) if e != "lost+found"]
        if entries:
            raise errors.FailedPrecondition(
                f"{path} is not empty ({len(entries)} entries, e.g. {sorted(entries)[0]!r}); "
                "a sample file directory must start empty"
            )
        fd = _open_dir_fd(path)
        try:
            _lock(fd, path, exclusive=True)
            d = cls(path, fd, DirMeta(db_uuid, dir_uuid))
            d.write_meta(d.meta)
        finally:
            os.close(fd)

    @classmethod
    def open(cls, path: Path | str, *, read_only: bool, lock: bool = True) -> SampleFileDir:
        """Opens and locks (exclusive, or shared when ``read_only``) the directory and
        reads its meta file. The caller checks the meta against the database.
        ``lock=False`` (read-only only): a look while the daemon has it open."""
        path = Path(path)
        assert lock or read_only, "only a read-only open may skip the lock"
        fd = _open_dir_fd(path)
        try:
            with errors.mapped_os_errors(f"opening sample file directory {path}"):
                if lock:
                    _lock(fd, path, exclusive=not read_only)
                try:
                    meta_fd = os.open(META_FILE, os.O_RDONLY | os.O_CLOEXEC, dir_fd=fd)
                except FileNotFoundError:
                    raise errors.FailedPrecondition(
                        f"{path} has no meta file: it is not an nvr sample file directory "
                        "(or the disk is not mounted)"
                    ) from None
                try:
                    data = os.pread(meta_fd, META_SIZE + 1, 0)
                finally:
                    os.close(meta_fd)
            return cls(path, fd, DirMeta.decode(data, str(path)))
        except BaseException:
            os.close(fd)
            raise

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def write_meta(self, meta: DirMeta) -> None:
        """Overwrites the meta file in place with one 512-byte write and fsyncs it (and the
        directory, the first time it is created)."""
        data = meta.encode()
        with errors.mapped_os_errors(f"writing meta file of {self.path}"):
            fd = os.open(META_FILE, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644, dir_fd=self._fd)
            try:
                written = os.pwrite(fd, data, 0)
                if written != len(data):
                    raise OSError(errno.EIO, f"short write of meta file ({written} bytes)")
                os.fsync(fd)
            finally:
                os.close(fd)
            os.fsync(self._fd)
        self.meta = meta

    # -- sample files ------------------------------------------------------------------

    def create_file(self, composite_id: int) -> int:
        """Creates a new sample file (``O_EXCL``: an existing file is an error, never
        overwritten) and returns its descriptor, open for writing."""
        name = file_name(composite_id)
        with errors.mapped_os_errors(f"creating {self.path / name}"):
            return os.open(
                name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o640, dir_fd=self._fd
            )

    def write_all(self, fd: int, pieces: Sequence[bytes | bytearray | memoryview]) -> None:
        """Writes every byte of ``pieces``, in order, with ``writev`` (no joined copy of a
        second of video), looping on short writes."""
        views = [memoryview(p) for p in pieces if len(p)]
        first = 0
        with errors.mapped_os_errors(f"writing a sample file in {self.path}"):
            while first < len(views):
                n = os.writev(fd, views[first : first + _IOV_MAX])
                while first < len(views) and n >= len(views[first]):
                    n -= len(views[first])
                    first += 1
                if n:
                    views[first] = views[first][n:]

    def truncate(self, fd: int, length: int) -> None:
        with errors.mapped_os_errors(f"truncating a sample file in {self.path}"):
            os.ftruncate(fd, length)

    def close_file(self, fd: int) -> None:
        with errors.mapped_os_errors(f"closing a sample file in {self.path}"):
            os.close(fd)

    def open_for_reading(self, composite_id: int) -> SampleFile:
        """Opens an existing sample file for reading (``SampleFileReader``)."""
        path = self.path / file_name(composite_id)
        with errors.mapped_os_errors(f"opening {path}"):
            fd = os.open(path.name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=self._fd)
        return LocalSampleFile(fd, path)

    def sync_file(self, composite_id: int) -> None:
        """fsyncs a sample file's data (it may have been written by an earlier process)."""
        name = file_name(composite_id)
        with errors.mapped_os_errors(f"syncing {self.path / name}"):
            fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=self._fd)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def sync(self) -> None:
        """fsyncs the directory itself, making creates and unlinks durable."""
        with errors.mapped_os_errors(f"syncing directory {self.path}"):
            os.fsync(self._fd)

    def unlink(self, composite_id: int) -> bool:
        """Removes a sample file. Returns False if it was already gone."""
        name = file_name(composite_id)
        with errors.mapped_os_errors(f"unlinking {self.path / name}"):
            try:
                os.unlink(name, dir_fd=self._fd)
            except FileNotFoundError:
                return False
        return True

    def file_size(self, composite_id: int) -> int | None:
        """The size of a sample file, or None if it does not exist."""
        name = file_name(composite_id)
        with errors.mapped_os_errors(f"cannot stat {self.path / name}"):
            try:
                return os.stat(name, dir_fd=self._fd).st_size
            except FileNotFoundError:
                return None

    def list_files(self) -> tuple[list[int], list[str]]:
        """(composite ids of the sample files, names of any other entries but ``meta`` and
        ``trash``)."""
        ids: list[int] = []
        others: list[str] = []
        with errors.mapped_os_errors(f"listing {self.path}"), os.scandir(self._fd) as it:
            for entry in it:
                if _NAME_RE.fullmatch(entry.name):
                    ids.append(int(entry.name, 16))
                elif entry.name not in (META_FILE, TRASH_DIR):
                    others.append(entry.name)
        ids.sort()
        return ids, sorted(others)

    def trash(self, composite_id: int) -> str:
        """Moves a sample file into the ``trash`` subdirectory (made if missing), never
        overwriting: a name already there gets a ``.N`` suffix. fsyncs both directories.
        Returns the new name, relative to the directory."""
        name = file_name(composite_id)
        with errors.mapped_os_errors(f"moving {self.path / name} to the trash"):
            with contextlib.suppress(FileExistsError):
                os.mkdir(TRASH_DIR, 0o750, dir_fd=self._fd)
            trash_fd = os.open(
                TRASH_DIR, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=self._fd
            )
            try:
                target, n = name, 0
                while True:
                    try:
                        os.stat(target, dir_fd=trash_fd, follow_symlinks=False)
                    except FileNotFoundError:
                        break
                    n += 1
                    target = f"{name}.{n}"
                os.rename(name, target, src_dir_fd=self._fd, dst_dir_fd=trash_fd)
                os.fsync(trash_fd)
            finally:
                os.close(trash_fd)
            os.fsync(self._fd)
        return f"{TRASH_DIR}/{target}"

    def statvfs(self) -> os.statvfs_result:
        with errors.mapped_os_errors(f"statvfs of {self.path}"):
            return os.fstatvfs(self._fd)


class LocalSampleFile:
    """A sample file of a ``SampleFileDir``, open for reading (a ``SampleFile``)."""

    def __init__(self, fd: int, path: Path) -> None:
        self._fd = fd
        self.path = path

    def pread(self, offset: int, length: int) -> bytes:
        with errors.mapped_os_errors(f"reading {self.path}"):
            return os.pread(self._fd, length, offset)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _open_dir_fd(path: Path) -> int:
    with errors.mapped_os_errors(f"opening sample file directory {path}"):
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def _lock(fd: int, path: Path, *, exclusive: bool) -> None:
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        raise errors.Unavailable(
            f"sample file directory {path} is in use by another nvr process"
        ) from None


def check_interlock(meta: DirMeta, *, path: str, db_uuid: uuidlib.UUID,
                    dir_uuid: uuidlib.UUID, last_complete_open: OpenRef | None) -> None:
    """Refuses (``FailedPrecondition`` with a message saying which) a directory that does
    not belong to this database or whose history disagrees with the database's.

    ``last_complete_open`` is what the database says; the directory agrees when its meta
    names the same open as completed, or as in progress (a crash between the database
    commit and the meta rewrite of a previous open).
    """
    if meta.db_uuid != db_uuid:
        raise errors.FailedPrecondition(
            f"sample file directory {path} belongs to another database "
            f"(its meta names database {meta.db_uuid}, this database is {db_uuid})"
        )
    if meta.dir_uuid != dir_uuid:
        raise errors.FailedPrecondition(
            f"sample file directory {path} is not the directory this database knows "
            f"(found directory {meta.dir_uuid}, expected {dir_uuid}): was a disk swapped?"
        )
    if last_complete_open is None:
        # The database never completed an open of this directory: neither may the meta
        # (an open in progress is the crash window of the very first open).
        if meta.last_complete_open is None:
            return
    elif last_complete_open in (meta.last_complete_open, meta.in_progress_open):
        return
    said = meta.last_complete_open.id if meta.last_complete_open else "none"
    expected = last_complete_open.id if last_complete_open else "none"
    raise errors.FailedPrecondition(
        f"sample file directory {path} was last opened by open {said}, but the database "
        f"expects open {expected}: the database or the directory was restored from a "
        "backup without the other; refusing to use it"
    )


def begin_open(sdir: SampleFileDir, open_ref: OpenRef) -> None:
    """Interlock step 1: record the open in progress in the meta file."""
    sdir.write_meta(dataclasses.replace(sdir.meta, in_progress_open=open_ref))


def finish_open(sdir: SampleFileDir, open_ref: OpenRef) -> None:
    """Interlock step 3 (after the database committed step 2): promote the open."""
    sdir.write_meta(
        dataclasses.replace(sdir.meta, last_complete_open=open_ref, in_progress_open=None)
    )


# ----------------------------------------------------------------- database-facing steps


def open_for_database(db: Database, dir_id: int, *, read_only: bool) -> SampleFileDir:
    """Opens the database's directory ``dir_id`` through the open interlock.

    Read-only: check only. Read-write: check, write the open in progress to the meta file,
    commit it as the directory's last complete open, then promote it in the meta file.
    Blocking (fsyncs); meant for start-up, before recording begins.
    """
    row = db.dirs[dir_id]
    sdir = SampleFileDir.open(row.path, read_only=read_only)
    try:
        expected = None
        if row.last_complete_open_id is not None:
            u = db.open_uuid_of(row.last_complete_open_id)
            expected = None if u is None else OpenRef(row.last_complete_open_id, u)
        check_interlock(sdir.meta, path=row.path, db_uuid=db.uuid, dir_uuid=row.uuid,
                        last_complete_open=expected)
        if not read_only:
            assert db.open_id is not None and db.open_uuid is not None
            ref = OpenRef(db.open_id, db.open_uuid)
            begin_open(sdir, ref)
            db.complete_dir_open(dir_id)
            finish_open(sdir, ref)
    except BaseException:
        sdir.close()
        raise
    return sdir


def remove_garbage_and_uncommitted(db: Database, dir_id: int, sdir: SampleFileDir) -> int:
    """Start-up cleanup (docs/design.md, "On-disk formats"): unlinks every file listed in
    ``garbage`` and every file of this directory's streams whose id was never committed
    (at or above the stream's counter; or a redaction's piece without a row, see
    ``nvr.storage.redact``), fsyncs the directory and lets the next flush forget the
    garbage rows. Returns the number of files removed."""
    row = db.dirs[dir_id]
    ids, _ = sdir.list_files()
    floors = {s.id: db.uncommitted_floor(s.id) for s in db.streams_in_dir(dir_id)}
    pieces = {cid for sid in floors for cid in db.committed_pieces(sid)}
    garbage = set(row.garbage_needs_unlink)
    removed = 0
    for cid in ids:
        stream_id, rec_id = cid >> 32, cid & 0xFFFFFFFF
        floor = floors.get(stream_id)
        if floor is not None and is_piece(rec_id):
            uncommitted = cid not in pieces
        else:
            uncommitted = floor is not None and rec_id >= floor
        if cid in garbage or uncommitted:
            sdir.unlink(cid)
            removed += 1
    sdir.sync()
    db.mark_garbage_unlinked(dir_id, sorted(garbage))
    return removed
