"""Prometheus metrics of one daemon, as served at ``/metrics``.

``Metrics`` owns a per-daemon ``CollectorRegistry`` (never the global one, so several
daemons in one test process do not mix) holding one custom collector. At scrape time the
collector reads what the parts already keep: each streamer's ``counters`` and ``state``,
each syncer's ``status``, queue and ``busy_since``, the database's per-stream summaries
and per-directory deletion totals, the directories' free space (``refresh_disk_space``,
called by the route before the scrape, through the thread seam) and ``Liveness``. Only
what happens between scrapes is counted here as it happens: HTTP requests
(``observe_request``) and each flush's commit latency (``commit_observer``, hooked into
``Syncer.on_commit``).

Every label has a bounded set of values: the camera's short name and stream type, the
directory id (a handful, configured), fixed enumerations (stream states, disconnect kinds,
syncer steps, HTTP methods) and the Quart rule of a route (its template, never the path
asked for). Disconnect kinds, syncer steps and stream states are emitted for every known
value from the start (zero until they happen), so the set of series does not grow as
streams reconnect; values outside the known sets are counted as ``other``.

Names: ``nvr_stream_*`` and ``nvr_motion_*`` (labels ``camera``, ``stream``: the analysed
one), ``nvr_dir_*`` and
``nvr_syncer_*`` (label ``dir``), ``nvr_archive_*`` (label ``archive``, its short name),
``nvr_http_requests_total``, ``nvr_event_loop_*``,
``nvr_healthy``. ``conf/nvr.example.toml`` (``metrics`` on a bind) says how to serve them.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from nvr.archive.uploader import Uploader
from nvr.base import errors
from nvr.base.blocking import run_blocking
from nvr.base.clock import Clocks
from nvr.base.time90k import UNITS_PER_SEC, Duration
from nvr.db.database import Database
from nvr.ingest.hub import FrameHub
from nvr.ingest.streamer import Streamer
from nvr.motion.task import MotionAnalyzer
from nvr.ops.liveness import Liveness
from nvr.storage.dir import SampleFileDir
from nvr.syncer import Syncer

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

STREAM_STATES = ("idle", "connecting", "recording", "backoff")


#: why a streamer's session ended (``StreamCounters.disconnects`` keys): its own kinds,
#: then the ``NvrError`` kinds of ``nvr.base.errors`` (a source or writer raises them)
DISCONNECT_KINDS = (
    "eof",
    "stall",
    "too long",
    "open failed",
    *sorted(
        name
        for name, v in vars(errors).items()
        if isinstance(v, type) and issubclass(v, errors.NvrError) and v is not errors.NvrError
    ),
)
#: the steps a syncer retries (``Syncer._retry`` names)
SYNCER_STEPS = ("fsync file", "fsync directory", "commit", "unlink")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
#: commit latency buckets, in seconds (a commit is a few ms; retries take minutes)
COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600)
OTHER = "other"


def _known(value: str, known: Sequence[str]) -> str:
    return value if value in known else OTHER


class Histogram:
    """Cumulative bucket counts and a sum per label values (values in seconds)."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self.bounds = tuple(buckets)
        self._series: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        counts, total = self._series.setdefault(labels, ([0] * (len(self.bounds) + 1), [0.0]))
        counts[bisect.bisect_left(self.bounds, value)] += 1
        total[0] += value

    def ensure(self, labels: tuple[str, ...]) -> None:
        """Makes the series exist (all zero) before its first observation."""
        self._series.setdefault(labels, ([0] * (len(self.bounds) + 1), [0.0]))

    def family(self, name: str, doc: str, label_names: Sequence[str]) -> HistogramMetricFamily:
        fam = HistogramMetricFamily(name, doc, labels=label_names)
        for labels, (counts, total) in sorted(self._series.items()):
            cumulative, running = [], 0
            bounds = [*map(floatToGoString, self.bounds), "+Inf"]
            for bound, n in zip(bounds, counts, strict=True):
                running += n
                cumulative.append((bound, running))
            fam.add_metric(list(labels), cumulative, total[0])
        return fam


@dataclass(frozen=True, slots=True)
class DiskSpace:
    size: int
    free: int  # available to us (``f_bavail``)


class Metrics:
    """See the module docstring. The mappings are live views (the daemon's own dicts,
    filled as syncers and streamers start)."""

    def __init__(
        self,
        db: Database,
        *,
        clocks: Clocks,
        dirs: Mapping[int, SampleFileDir],
        syncers: Mapping[int, Syncer],
        streamers: Mapping[int, Streamer],
        uploaders: Mapping[int, Uploader] | None = None,
        liveness: Liveness | None = None,
        hub: FrameHub | None = None,
        motion: Mapping[int, MotionAnalyzer] | None = None,
    ) -> None:
        self._db = db
        self._clocks = clocks
        self._dirs = dirs
        self._syncers = syncers
        self._streamers = streamers
        self._uploaders = uploaders if uploaders is not None else {}
        self._liveness = liveness
        self._hub = hub
        self._motion = motion if motion is not None else {}
        self._http: dict[tuple[str, str, str], int] = {}
        self._commit_seconds = Histogram(COMMIT_BUCKETS)
        self._disk: dict[int, DiskSpace] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))

    # -- events ----------------------------------------------------------------------------

    def observe_request(self, rule: str | None, method: str, status: int) -> None:
        """Counts one HTTP request by route template (``None``: no route matched)."""
        key = (rule or "unmatched", _known(method, HTTP_METHODS), str(status))
        self._http[key] = self._http.get(key, 0) + 1

    def commit_observer(self, dir_id: int) -> Callable[[Duration], None]:
        """What to set as ``Syncer.on_commit`` for the syncer of ``dir_id``."""
        labels = (str(dir_id),)
        self._commit_seconds.ensure(labels)

        def observe(took: Duration) -> None:
            self._commit_seconds.observe(labels, took / UNITS_PER_SEC)

        return observe

    # -- scraping --------------------------------------------------------------------------

    async def refresh_disk_space(self) -> None:
        """Reads each directory's filesystem size and free space (off the event loop: a
        sick disk must not freeze it). A directory whose ``statvfs`` fails has none."""
        for dir_id, sdir in list(self._dirs.items()):
            try:
                st = await run_blocking(sdir.statvfs)
            except (errors.NvrError, OSError) as e:
                log.debug("statvfs %s: %s", sdir.path, e)
                self._disk.pop(dir_id, None)
                continue
            self._disk[dir_id] = DiskSpace(st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize)

    def exposition(self) -> bytes:
        """The Prometheus text format (``CONTENT_TYPE``) of every metric."""
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Metric]:
        yield from self._stream_families()
        yield from self._dir_families()
        yield from self._syncer_families()
        yield from self._archive_families()
        http = CounterMetricFamily(
            "nvr_http_requests", "HTTP requests by route template, method and status",
            labels=["route", "method", "status"],
        )
        for key, n in sorted(self._http.items()):
            http.add_metric(list(key), n)
        yield http
        yield from self._liveness_families()

    def _stream_families(self) -> Iterator[Metric]:
        labels = ["camera", "stream"]

        def counter(name: str, doc: str, extra: Sequence[str] = ()) -> CounterMetricFamily:
            return CounterMetricFamily(name, doc, labels=[*labels, *extra])

        def gauge(name: str, doc: str, extra: Sequence[str] = ()) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=[*labels, *extra])

        frames = counter("nvr_stream_frames", "frames received from the camera")
        nbytes = counter("nvr_stream_bytes", "bytes of frames received from the camera")
        dropped = counter(
            "nvr_stream_frames_dropped", "frames dropped while waiting for a key frame"
        )
        closed = counter("nvr_stream_recordings", "recordings closed by this process")
        committed = counter(
            "nvr_stream_recordings_committed",
            "recordings committed to the database (over the stream's lifetime)",
        )
        sessions = counter("nvr_stream_sessions", "connection attempts")
        disconnects = counter(
            "nvr_stream_disconnects", "sessions ended (then retried), by kind", ["reason"]
        )
        state = gauge("nvr_stream_state", "1 for the stream's current state", ["state"])
        state_age = gauge("nvr_stream_state_seconds", "how long the stream is in its state")
        retained = gauge(
            "nvr_stream_retained_bytes", "sample file bytes of committed and pending recordings"
        )
        limit = gauge("nvr_stream_retain_limit_bytes", "the stream's retain_bytes")
        protected = gauge(
            "nvr_stream_protected_bytes",
            "bytes of recordings in protected ranges (as of the last retention pass)",
        )
        over = gauge(
            "nvr_stream_protected_over_budget",
            "1 while protected video alone exceeds retain_bytes (byte retention stopped)",
        )
        viewers = gauge("nvr_stream_live_viewers", "live.m4s WebSockets watching the stream")
        now = self._clocks.realtime()
        db = self._db
        for sid, streamer in sorted(self._streamers.items()):
            stream = db.streams.get(sid)
            if stream is None:
                continue
            lv = [db.cameras[stream.camera_id].short_name, stream.type]
            c = streamer.counters
            frames.add_metric(lv, c.frames)
            nbytes.add_metric(lv, c.bytes)
            dropped.add_metric(lv, c.frames_dropped)
            closed.add_metric(lv, c.recordings)
            committed.add_metric(lv, stream.cum_recordings)
            sessions.add_metric(lv, c.sessions)
            by_reason = dict.fromkeys((*DISCONNECT_KINDS, OTHER), 0)
            for reason, n in c.disconnects.items():
                by_reason[_known(reason, DISCONNECT_KINDS)] += n
            for reason, n in by_reason.items():
                disconnects.add_metric([*lv, reason], n)
            st = streamer.state.value
            for kind in STREAM_STATES:
                state.add_metric([*lv, kind], int(st.kind == kind))
            state_age.add_metric(lv, max(0, now - st.since) / UNITS_PER_SEC)
            retained.add_metric(lv, stream.bytes_after_planned_deletions)
            limit.add_metric(lv, stream.config.retain_bytes)
            rs = stream.retention
            protected.add_metric(lv, 0 if rs is None else rs.protected_bytes)
            over.add_metric(lv, int(rs is not None and rs.over_budget))
            viewers.add_metric(lv, 0 if self._hub is None else self._hub.viewers(sid))
        yield from (frames, nbytes, dropped, closed, committed, sessions, disconnects)
        yield from (state, state_age, retained, limit, protected, over, viewers)
        yield from self._motion_families(counter)

    def _motion_families(
        self, counter: Callable[[str, str], CounterMetricFamily]
    ) -> Iterator[Metric]:
        frames = counter("nvr_motion_frames", "frames decoded for motion analysis")
        pictures = counter("nvr_motion_pictures", "pictures analysed for motion")
        skipped = counter(
            "nvr_motion_frames_skipped", "frames not analysed because analysis fell behind"
        )
        decode_errors = counter("nvr_motion_decode_errors", "frames the decoder rejected")
        events = counter("nvr_motion_events", "motion events (on, then off) seen")
        db = self._db
        for sid, analyzer in sorted(self._motion.items()):
            stream = db.streams.get(sid)
            if stream is None:
                continue
            lv = [db.cameras[stream.camera_id].short_name, stream.type]
            c = analyzer.counters
            frames.add_metric(lv, c.frames)
            pictures.add_metric(lv, c.pictures)
            skipped.add_metric(lv, c.skipped)
            decode_errors.add_metric(lv, c.decode_errors)
            events.add_metric(lv, c.events)
        yield from (frames, pictures, skipped, decode_errors, events)

    def _dir_families(self) -> Iterator[Metric]:
        used = GaugeMetricFamily(
            "nvr_dir_recorded_bytes",
            "disk space the committed recordings take (whole 4 KiB blocks)", labels=["dir"],
        )
        size = GaugeMetricFamily("nvr_dir_fs_size_bytes", "size of the filesystem", labels=["dir"])
        free = GaugeMetricFamily(
            "nvr_dir_fs_free_bytes", "free space on the filesystem (for us)", labels=["dir"]
        )
        gc_bytes = CounterMetricFamily(
            "nvr_dir_gc_bytes", "sample file bytes deleted by retention", labels=["dir"]
        )
        gc_recs = CounterMetricFamily(
            "nvr_dir_gc_recordings", "recordings deleted by retention", labels=["dir"]
        )
        garbage = GaugeMetricFamily(
            "nvr_dir_garbage_files", "deleted recordings whose files await unlinking",
            labels=["dir"],
        )
        for dir_id, row in sorted(self._db.dirs.items()):
            lv = [str(dir_id)]
            used.add_metric(
                lv, sum(s.committed.fs_bytes for s in self._db.streams_in_dir(dir_id))
            )
            disk = self._disk.get(dir_id)
            if disk is not None:
                size.add_metric(lv, disk.size)
                free.add_metric(lv, disk.free)
            gc_bytes.add_metric(lv, row.deleted_bytes)
            gc_recs.add_metric(lv, row.deleted_recordings)
            garbage.add_metric(lv, len(row.garbage_needs_unlink))
        yield from (used, size, free, gc_bytes, gc_recs, garbage)

    def _syncer_families(self) -> Iterator[Metric]:
        lbl = ["dir"]
        ok = GaugeMetricFamily(
            "nvr_syncer_ok", "1 unless the syncer is retrying a step", labels=lbl
        )
        failing = GaugeMetricFamily(
            "nvr_syncer_failing", "1 for the step the syncer is retrying", labels=["dir", "step"]
        )
        failing_for = GaugeMetricFamily(
            "nvr_syncer_failing_seconds", "how long the syncer has been retrying", labels=lbl
        )
        busy = GaugeMetricFamily(
            "nvr_syncer_busy_seconds", "how long the syncer's current pass has run", labels=lbl
        )
        queued = GaugeMetricFamily(
            "nvr_syncer_queued_recordings", "recordings received, not yet fsynced", labels=lbl
        )
        commits = CounterMetricFamily("nvr_syncer_commits", "flushes committed", labels=lbl)
        mono, now = self._clocks.monotonic(), self._clocks.realtime()
        for dir_id, s in sorted(self._syncers.items()):
            lv = [str(dir_id)]
            st = s.status.value
            ok.add_metric(lv, int(st.ok))
            step = None if st.failing_step is None else _known(st.failing_step, SYNCER_STEPS)
            for known in (*SYNCER_STEPS, OTHER):
                failing.add_metric([*lv, known], int(step == known))
            since = st.failing_since
            failing_for.add_metric(lv, 0 if since is None else max(0, now - since) / UNITS_PER_SEC)
            b = s.busy_since
            busy.add_metric(lv, 0 if b is None else max(0, mono - b) / UNITS_PER_SEC)
            queued.add_metric(lv, s.queued)
            commits.add_metric(lv, s.commits)
        yield from (ok, failing, failing_for, busy, queued, commits)
        yield self._commit_seconds.family(
            "nvr_syncer_commit_seconds", "how long each flush took, retries included", lbl
        )

    def _archive_families(self) -> Iterator[Metric]:
        lbl = ["archive"]

        def gauge(name: str, doc: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=lbl)

        def counter(name: str, doc: str) -> CounterMetricFamily:
            return CounterMetricFamily(name, doc, labels=lbl)

        ok = gauge("nvr_archive_ok", "1 unless the archive's uploader is retrying")
        failing_for = gauge("nvr_archive_failing_seconds", "how long the uploader has retried")
        backlog = gauge("nvr_archive_backlog_recordings", "committed recordings not archived")
        backlog_bytes = gauge("nvr_archive_backlog_bytes", "their sample file bytes")
        oldest = gauge("nvr_archive_oldest_unarchived_age_seconds",
                       "age of the oldest recording not archived (0: none)")
        done = counter("nvr_archive_uploaded_recordings", "recordings archived by this run")
        done_bytes = counter("nvr_archive_uploaded_bytes", "sample file bytes archived")
        lost = counter("nvr_archive_never_archived_recordings",
                       "recordings deleted locally before they were archived")
        skipped = gauge("nvr_archive_skipped_recordings",
                        "recordings not archived: their local file changed since written")
        now = self._clocks.realtime()
        for aid, up in sorted(self._uploaders.items()):
            lv = [self._db.archives[aid].short_name]
            st = up.status.value
            ok.add_metric(lv, int(st.ok))
            since = st.failing_since
            failing_for.add_metric(lv, 0 if since is None else max(0, now - since) / UNITS_PER_SEC)
            b = self._db.archive_backlog(aid)
            backlog.add_metric(lv, b.recordings)
            backlog_bytes.add_metric(lv, b.bytes)
            o = b.oldest_start_90k
            oldest.add_metric(lv, 0 if o is None else max(0, now - o) / UNITS_PER_SEC)
            done.add_metric(lv, up.uploaded)
            done_bytes.add_metric(lv, up.uploaded_bytes)
            lost.add_metric(lv, self._db.never_archived.get(aid, 0))
            skipped.add_metric(lv, len(up.skipped))
        yield from (ok, failing_for, backlog, backlog_bytes, oldest, done, done_bytes, lost,
                    skipped)

    def _liveness_families(self) -> Iterator[Metric]:
        lv = self._liveness
        if lv is None:
            return
        yield GaugeMetricFamily(
            "nvr_healthy", "1 while the systemd watchdog would be pinged", value=int(lv.healthy)
        )
        yield GaugeMetricFamily(
            "nvr_event_loop_lag_seconds", "how late the loop monitor last woke",
            value=lv.last_lag / UNITS_PER_SEC,
        )
        yield GaugeMetricFamily(
            "nvr_event_loop_max_lag_seconds", "the most the loop monitor has woken late",
            value=lv.max_lag / UNITS_PER_SEC,
        )


class _Collector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self._metrics.collect()
