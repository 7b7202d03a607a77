"""``nvr check --archive NAME``: an archive's objects against the database's rows.

For every recording the database says the archive holds (``archived_recording``) and
every object under the archive's prefix: *missing* (a row whose sample or description
object is not there), *extra* (an object no row names), *wrong size* (a sample object
whose size is not the row's), *wrong checksum* (the SHA-256 the server stored for the
object, when it keeps one, or, with ``hash_objects``, of the bytes read back, is not the
row's). Extra objects of streams the database no longer has are reported too (they are
another database's or a deleted camera's). Read only: it repairs nothing.

Tombstones (``nvr.archive.tombstones``) are read from the archive: their objects are not
extra; a redaction of this database with no tombstone in the archive is a problem (other
sites would still show what it hides), and so is a recording the database still says the
archive holds under a tombstone (its bytes are still there: the uploader deletes them on
its next pass); such a recording is not checked further.

What belongs here: that comparison, blocking (the daemon is stopped; the command runs it
directly). Not: argument parsing (``nvr.cli.check``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from nvr.archive import layout, tombstones
from nvr.archive.client import ObjectStore
from nvr.base import errors
from nvr.db.database import Database

_READ = 8 << 20


@dataclass
class ArchiveReport:
    recordings: int = 0
    objects: int = 0
    problems: list[str] = field(default_factory=list)


def check_archive(
    db: Database, archive_id: int, store: ObjectStore, *, hash_objects: bool = False
) -> ArchiveReport:
    a = db.archives[archive_id]
    prefix = a.config.prefix
    report = ArchiveReport()
    listed = {o.key: o for o in store.list(prefix)}
    report.objects = len(listed)
    named = {k for k in listed if tombstones.is_tombstone_key(prefix, k)}
    try:
        stones = tombstones.list_tombstones(store, prefix)
    except errors.DataLoss as e:
        report.problems.append(f"unreadable tombstone: {e}")
        stones = []
    in_archive = {t.redaction_id for t in stones if t.database_uuid == db.uuid}
    for r in db.all_redactions():
        if r.id not in in_archive and r.stream_id in db.streams:
            report.problems.append(
                f"missing tombstone: redaction {r.id} is not in the archive (the uploader "
                "writes it; until then other sites show what it hides)"
            )
    stream_ids = sorted(a.streams | {
        sid for sid in db.streams if db.archived_in(archive_id, sid)
    })
    for sid in stream_ids:
        stream = db.streams[sid]
        cam = db.cameras[stream.camera_id]
        for h in db.archived_in(archive_id, sid):
            report.recordings += 1
            sample_key, desc_key = layout.recording_keys(
                prefix, cam.uuid, stream.type, h.composite_id
            )
            named.update((sample_key, desc_key))
            end = h.start_time_90k + h.wall_duration_90k
            if db.is_hidden(sid, h.start_time_90k, end) or tombstones.covered(
                stones, cam.uuid, stream.type, h.start_time_90k, end
            ):
                report.problems.append(
                    f"redacted, still in the archive: recording {h.composite_id:016x} "
                    "(the uploader deletes it)"
                )
                continue
            for key in (sample_key, desc_key):
                if key not in listed:
                    report.problems.append(f"missing: {key} (recording {h.composite_id:016x})")
            o = listed.get(sample_key)
            if o is None:
                continue
            if o.size != h.sample_file_bytes:
                report.problems.append(
                    f"wrong size: {sample_key}: {o.size} bytes, the row says "
                    f"{h.sample_file_bytes}"
                )
                continue
            sha = _stored_or_read(store, sample_key, o.size, hash_objects)
            if sha is not None and sha != h.sample_file_sha256:
                report.problems.append(
                    f"wrong checksum: {sample_key}: SHA-256 {sha.hex()}, the row says "
                    f"{h.sample_file_sha256.hex()}"
                )
    for key in sorted(set(listed) - named):
        report.problems.append(f"extra: {key} ({listed[key].size} bytes, no row names it)")
    return report


def _stored_or_read(store: ObjectStore, key: str, size: int, read: bool) -> bytes | None:
    if read:
        h = hashlib.sha256()
        for start in range(0, size, _READ):
            h.update(store.get_range(key, start, min(size, start + _READ)))
        return h.digest()
    info = store.head(key)
    return None if info is None else info.sha256
