"""``nvr archive restore``: a database's recordings rebuilt from an archive's descriptions.

After the local disk is lost, the archive is self-describing (``layout``): every
recording's description object holds its row, index, sample entry, SHA-256, camera and
stream. ``restore`` lists the archive's prefix, reads every description whose sample
object is there with the size the row says (in a small pool of GET threads), and adds
the recordings as archive-only (``Archives.restore_recordings``: cameras by uuid, streams
with their old ids, so composite ids, bytes and ETags are as before), held by the
archive. Recordings the database has already are left as they are, so running it twice
adds nothing. ``hidden`` (a recording a tombstone covers, issue 18 point 6) are never
brought back.

What belongs here: reading the archive back into the database. Not: the CLI, the
description's format (``layout``).
"""

from __future__ import annotations

import concurrent.futures
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from nvr.archive import layout
from nvr.archive.client import ObjectInfo, ObjectStore
from nvr.base.time90k import Time
from nvr.db.archives import RestoredRecording, RestoreResult
from nvr.db.database import Database

_KEY_RE = re.compile(r"[0-9a-f-]{36}/(main|sub|ext)/\d{10}\.(json|sample)")
#: GETs of descriptions in flight
WORKERS = 8


@dataclass(frozen=True, slots=True)
class RestoreReport:
    result: RestoreResult
    #: descriptions skipped (no sample object, or one of another size; unreadable)
    problems: list[str]
    hidden: int  # under a tombstone


def restore(
    db: Database, archive_id: int, store: ObjectStore, now: Time, *,
    hidden: Callable[[layout.Description], bool] | None = None,
) -> RestoreReport:
    """See the module docstring. Blocking (call from a CLI, or through ``run_blocking``)."""
    prefix = db.archives[archive_id].config.prefix
    found = read_descriptions(store, prefix, store.list(prefix), hidden=hidden)
    return RestoreReport(add_descriptions(db, archive_id, found.descriptions, now),
                         found.problems, found.hidden)


@dataclass(frozen=True, slots=True)
class Found:
    """What ``read_descriptions`` read: the descriptions to add, the problems (as
    ``RestoreReport.problems``) and how many a tombstone hides."""

    descriptions: list[layout.Description]
    problems: list[str]
    hidden: int


def read_descriptions(
    store: ObjectStore, prefix: str, objects: Iterable[ObjectInfo], *,
    hidden: Callable[[layout.Description], bool] | None = None,
    skip: Callable[[str], bool] | None = None,
) -> Found:
    """Reads (GETs, in a pool of ``WORKERS`` threads) the descriptions among ``objects``
    (a listing under ``prefix``) whose sample object is listed with the size they say,
    leaving out the keys ``skip`` says and those ``hidden`` says. Blocking."""
    samples: dict[str, int] = {}
    descriptions: dict[str, int] = {}
    for o in objects:
        rest = o.key[len(prefix):]
        if _KEY_RE.fullmatch(rest):
            (samples if rest.endswith(".sample") else descriptions)[o.key] = o.size
    keys = sorted(k for k in descriptions if skip is None or not skip(k))
    problems: list[str] = []

    def fetch(key: str) -> layout.Description:
        return layout.parse(key, store.get_range(key, 0, descriptions[key]))

    if len(keys) > 1:
        with concurrent.futures.ThreadPoolExecutor(WORKERS, "archive-restore") as pool:
            parsed = list(pool.map(_or_error(fetch), keys))
    else:
        parsed = [_or_error(fetch)(k) for k in keys]
    out: list[layout.Description] = []
    n_hidden = 0
    for key, d in zip(keys, parsed, strict=True):
        if isinstance(d, Exception):
            problems.append(f"{key}: {d}")
            continue
        sample_key = key.removesuffix(".json") + ".sample"
        size = samples.get(sample_key)
        if size != d.row["sample_file_bytes"]:
            problems.append(f"{key}: sample object {'missing' if size is None else size}, "
                            f"the description says {d.row['sample_file_bytes']} bytes")
            continue
        if hidden is not None and hidden(d):
            n_hidden += 1
            continue
        out.append(d)
    return Found(out, problems, n_hidden)


def add_descriptions(
    db: Database, archive_id: int, descriptions: list[layout.Description], now: Time
) -> RestoreResult:
    """Adds the recordings ``read_descriptions`` read, as archive-only, held by the
    archive (``Archives.restore_recordings``), with their sample entries."""
    recs = [
        RestoredRecording(
            d.camera_uuid, d.camera_name, d.stream_type,
            dict(d.row, video_sample_entry_id=db.insert_video_sample_entry(d.entry)),
            d.video_index, d.sha256,
        )
        for d in descriptions
    ]
    return db.restore_recordings(archive_id, recs, now)


def _or_error(fn: Callable[[str], layout.Description]
              ) -> Callable[[str], layout.Description | Exception]:
    def call(key: str) -> layout.Description | Exception:
        try:
            return fn(key)
        except Exception as e:  # reported per object; the others are restored
            return e
    return call
