"""Tombstones in an archive: a redaction (``nvr.db.redactions``) as an object, so that it
reaches every site that reads the archive, and the question "is this hidden?" asked of them.

A redaction committed locally is written to every archive of its stream as one object,
``{prefix}tombstones/{database uuid}/{redaction id:010d}.json`` (``tombstone_key``), by the
archive's uploader *before* it deletes any archived bytes under it: from then on every
reader of the archive (the listing of archive-only recordings, ``nvr check --archive``,
``nvr archive restore``, a read-only second site) hides the recordings it covers, on
every site, even while their bytes are still there. The uploader deletes those bytes
afterwards. Tombstones are never deleted (archive retention leaves them alone), so a
restore from the archive can never bring a redacted recording back.

The object says which camera and stream (by uuid and type: the archive's own keys), the
wall-time range, and the audit fields of the redaction (reason, who, when). A recording
``[start, end)`` is covered when it overlaps the range, exactly as
``Redactions.is_hidden`` decides locally (whole recordings, for now).

What belongs here: the key, the object's content, listing them (blocking: callers go
through ``run_blocking``), ``covers``. Not: when they are written (``uploader``).
"""

from __future__ import annotations

import json
import uuid as uuidlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from nvr.archive.client import ObjectStore
from nvr.base import errors
from nvr.base.time90k import Time

FORMAT = 1
DIR = "tombstones/"
#: a tombstone object is small; anything bigger is not one of ours
MAX_BYTES = 16 << 10


@dataclass(frozen=True, slots=True)
class Tombstone:
    database_uuid: uuidlib.UUID
    redaction_id: int
    camera_uuid: uuidlib.UUID
    stream_type: str
    start_time_90k: Time
    end_time_90k: Time
    reason: str
    username: str | None
    creation_time_90k: Time

    def covers(self, camera_uuid: uuidlib.UUID, stream_type: str, start: Time,
               end: Time) -> bool:
        """Whether a recording of that stream spanning ``[start, end)`` is hidden by it
        (any overlap; a zero-length recording counts as one unit long)."""
        return (camera_uuid == self.camera_uuid and stream_type == self.stream_type
                and self.start_time_90k < max(end, start + 1) and self.end_time_90k > start)

    def to_json(self) -> bytes:
        doc: dict[str, Any] = {
            "format": FORMAT,
            "databaseUuid": str(self.database_uuid),
            "redactionId": self.redaction_id,
            "camera": {"uuid": str(self.camera_uuid)},
            "stream": {"type": self.stream_type},
            "startTime90k": self.start_time_90k,
            "endTime90k": self.end_time_90k,
            "reason": self.reason,
            "username": self.username,
            "creationTime90k": self.creation_time_90k,
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Tombstone:
        """Parses a tombstone object; ``DataLoss`` if it is not one."""
        try:
            d = json.loads(data)
            if d["format"] != FORMAT:
                raise ValueError(f"format {d['format']!r}")
            t = cls(
                uuidlib.UUID(d["databaseUuid"]), int(d["redactionId"]),
                uuidlib.UUID(d["camera"]["uuid"]), str(d["stream"]["type"]),
                int(d["startTime90k"]), int(d["endTime90k"]), str(d["reason"]),
                None if d.get("username") is None else str(d["username"]),
                int(d["creationTime90k"]),
            )
        except (ValueError, KeyError, TypeError) as e:
            raise errors.DataLoss(f"not a tombstone object: {e}") from e
        if not 0 <= t.start_time_90k < t.end_time_90k:
            raise errors.DataLoss("not a tombstone object: empty range")
        return t


def tombstone_key(prefix: str, database_uuid: uuidlib.UUID, redaction_id: int) -> str:
    return f"{prefix}{DIR}{database_uuid}/{redaction_id:010d}.json"


def is_tombstone_key(prefix: str, key: str) -> bool:
    return key.startswith(prefix + DIR)


def list_tombstones(store: ObjectStore, prefix: str) -> list[Tombstone]:
    """Every tombstone in the archive under ``prefix`` (blocking: one LIST, then one GET
    per tombstone), by database and redaction id. Restore and any reader of another
    site's archive use this: what it returns is hidden, and never restored. An object
    under the tombstones' directory that does not parse is ``DataLoss`` (a reader must
    not guess what it hid)."""
    out = []
    for o in store.list(prefix + DIR):
        if o.size > MAX_BYTES:
            raise errors.DataLoss(f"{o.key}: {o.size} bytes is not a tombstone object")
        try:
            t = Tombstone.from_json(store.get_range(o.key, 0, o.size))
        except errors.DataLoss as e:
            raise errors.DataLoss(f"{o.key}: {e}") from e
        out.append(t)
    out.sort(key=lambda t: (str(t.database_uuid), t.redaction_id))
    return out


def covered(tombstones: Iterable[Tombstone], camera_uuid: uuidlib.UUID, stream_type: str,
            start: Time, end: Time) -> bool:
    """Whether any of ``tombstones`` hides that recording."""
    return any(t.covers(camera_uuid, stream_type, start, end) for t in tombstones)
