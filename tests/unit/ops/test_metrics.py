"""Metrics on a mock clock: a scrape after a recording session parsed with
``prometheus_client.parser``, label sets that stay the same as streams reconnect and hours
pass, and HTTP requests counted by route template."""

from __future__ import annotations

import errno
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio
import trio.testing
from prometheus_client.parser import text_string_to_metric_families

from nvr.base import errors
from nvr.base.clock import SimulatedClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.config import BindConfig
from nvr.ingest.source import OpenOptions
from nvr.ingest.streamer import Streamer, StreamerOptions
from nvr.ops.metrics import DISCONNECT_KINDS, Metrics
from nvr.syncer import Syncer
from nvr.testing.env import RecordingEnv, create_env, open_env
from nvr.testing.replay import ReplayOpener, Session, load_packets
from nvr.web.app import create_app
from nvr.web.context import WebContext
from tests.support.determinism import T0
from tests.support.paths import FIXTURES

SEC = UNITS_PER_SEC
CLIP = str(FIXTURES / "h264-640x360.mp4")
#: label names a family may use: none of them can hold an id that grows, a time or a path
ALLOWED_LABELS = {"camera", "stream", "reason", "state", "dir", "step", "route", "method",
                  "status", "le"}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


pytestmark = pytest.mark.usefixtures("inline_seam")


@dataclass
class Rig:
    env: RecordingEnv
    clocks: SimulatedClocks
    syncer: Syncer
    streamers: list[Streamer]
    metrics: Metrics

    async def scrape(self) -> Samples:
        await self.metrics.refresh_disk_space()
        return parse(self.metrics.exposition().decode())


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            assert set(s.labels) <= ALLOWED_LABELS, (s.name, s.labels)
            key = (s.name, frozenset(s.labels.items()))
            assert key not in out, key
            out[key] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def make_rig(tmp_path: Path, sessions: Sequence[Sequence[Session]], retain_bytes: int) -> Rig:
    create_env(tmp_path, streams=len(sessions), flush_if_sec=0, retain_bytes=retain_bytes)
    clocks = SimulatedClocks(T0)
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
    opener = ReplayOpener(clocks, {f"rtsp://cam{i}/main": s for i, s in enumerate(sessions)})
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    streamers = [
        Streamer(db=env.db, stream_id=sid, sdir=env.sdir, sink=syncer, opener=opener,
                 clocks=clocks, options=StreamerOptions(jitter=0.0),
                 open_options=OpenOptions(read_timeout=4 * SEC))
        for sid in env.stream_ids
    ]
    metrics = Metrics(env.db, clocks=clocks, dirs={env.dir_id: env.sdir},
                      syncers={env.dir_id: syncer},
                      streamers={s.stream_id: s for s in streamers})
    syncer.on_commit = metrics.commit_observer(env.dir_id)
    return Rig(env, clocks, syncer, streamers, metrics)


async def test_scrape_after_a_recording_session(tmp_path: Path,
                                                autojump_clock: trio.testing.MockClock) -> None:
    packets = load_packets(CLIP)
    rig = make_rig(
        tmp_path,
        [
            [Session(packets, loops=None)],
            # EOF after 3 s, a refused connection, then recording for good
            [Session(packets, end_after=90), Session(open_error=errors.Unavailable("refused")),
             Session(packets, loops=None)],
        ],
        retain_bytes=3 << 20,  # a few minutes of the clip: retention deletes
    )
    cam0, cam1 = ({"camera": f"cam{i}", "stream": "main"} for i in range(2))
    async with trio.open_nursery() as outer:
        await outer.start(rig.syncer.run)
        async with trio.open_nursery() as ingest:
            for s in rig.streamers:
                ingest.start_soon(s.run)
            await trio.sleep(600)
            mid = await rig.scrape()
            ingest.cancel_scope.cancel()
        outer.cancel_scope.cancel()
    end = await rig.scrape()
    env, db = rig.env, rig.env.db

    # while recording: the state gauges say so, for every known state
    assert value(mid, "nvr_stream_state", **cam0, state="recording") == 1
    assert value(mid, "nvr_stream_state", **cam0, state="backoff") == 0
    assert value(mid, "nvr_stream_state", **cam1, state="recording") == 1
    assert value(end, "nvr_stream_state", **cam1, state="idle") == 1

    gc = value(end, "nvr_dir_gc_bytes_total", dir=str(env.dir_id))
    assert gc > 0 and value(end, "nvr_dir_gc_recordings_total", dir=str(env.dir_id)) > 0
    retained = 0.0
    for labels, streamer in zip((cam0, cam1), rig.streamers, strict=True):
        c, stream = streamer.counters, db.streams[streamer.stream_id]
        assert c.frames > 0 and c.frames_dropped == 0
        assert value(end, "nvr_stream_frames_total", **labels) == c.frames
        assert value(end, "nvr_stream_bytes_total", **labels) == c.bytes
        assert value(end, "nvr_stream_frames_dropped_total", **labels) == 0
        assert value(end, "nvr_stream_recordings_total", **labels) == c.recordings
        # every recording closed was committed by the final flush
        assert value(end, "nvr_stream_recordings_committed_total", **labels) == c.recordings
        assert value(end, "nvr_stream_retain_limit_bytes", **labels) == 3 << 20
        retained += value(end, "nvr_stream_retained_bytes", **labels)
        assert value(end, "nvr_stream_retained_bytes", **labels) == (
            stream.committed.sample_file_bytes
        )
    # every byte received was recorded: what retention deleted plus what it kept
    assert gc + retained == sum(s.counters.bytes for s in rig.streamers)

    assert value(end, "nvr_stream_sessions_total", **cam1) == 3
    assert value(end, "nvr_stream_disconnects_total", **cam1, reason="eof") == 1
    assert value(end, "nvr_stream_disconnects_total", **cam1, reason="open failed") == 1
    assert value(end, "nvr_stream_disconnects_total", **cam0, reason="eof") == 0

    d = {"dir": str(env.dir_id)}
    commits = rig.syncer.commits
    assert commits > 10
    assert value(end, "nvr_syncer_commits_total", **d) == commits
    assert value(end, "nvr_syncer_commit_seconds_count", **d) == commits
    assert value(end, "nvr_syncer_commit_seconds_bucket", **d, le="+Inf") == commits
    assert value(end, "nvr_syncer_ok", **d) == 1
    assert value(end, "nvr_syncer_failing", **d, step="commit") == 0
    assert value(end, "nvr_dir_recorded_bytes", **d) == sum(
        s.committed.fs_bytes for s in db.streams.values()
    )
    assert 0 < value(end, "nvr_dir_fs_free_bytes", **d) <= value(end, "nvr_dir_fs_size_bytes", **d)
    env.close()


async def test_label_sets_stay_the_same_as_streams_reconnect_and_hours_pass(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    packets = load_packets(CLIP)
    flaky = [
        Session(packets, loops=None, end_after=5000),
        Session(open_error=errors.Unavailable("refused")),
        Session(packets, loops=None, stall_after=3000),
        Session(packets, loops=None, error_after=(4000, errors.DataLoss("garbage"))),
    ]
    rig = make_rig(tmp_path, [[Session(packets, loops=None)], flaky * 20], retain_bytes=8 << 20)
    scrapes: list[Samples] = []
    async with trio.open_nursery() as outer:
        await outer.start(rig.syncer.run)
        async with trio.open_nursery() as ingest:
            for s in rig.streamers:
                ingest.start_soon(s.run)
            await trio.sleep(1)
            for i in range(12):  # every 10 minutes for two hours
                scrapes.append(await rig.scrape())
                if i == 5:  # the syncer fails for a while, then recovers
                    rig.env.sdir.fail("sync_file", errno.EIO)
                elif i == 6:
                    rig.env.sdir.heal()
                await trio.sleep(600)
            scrapes.append(await rig.scrape())
            ingest.cancel_scope.cancel()
        outer.cancel_scope.cancel()
    scrapes.append(await rig.scrape())

    # things happened: reconnects of every kind, a syncer failure, retention
    c = rig.streamers[1].counters
    assert c.sessions > 20
    assert set(c.disconnects) == {"eof", "open failed", "stall", "DataLoss"}
    assert rig.env.sdir.calls["sync_file"] > 3
    assert any(value(s, "nvr_syncer_ok", dir=str(rig.env.dir_id)) == 0 for s in scrapes)
    assert value(scrapes[-1], "nvr_dir_gc_recordings_total", dir=str(rig.env.dir_id)) > 0
    # ... and yet the same series, every time
    series = [set(s) for s in scrapes]
    assert all(s == series[0] for s in series), [
        sorted(s ^ series[0], key=str) for s in series
    ]
    per_stream = {k for k in series[0] if dict(k[1]).get("camera") == "cam1"}
    reasons = {dict(k[1])["reason"] for k in per_stream if k[0] == "nvr_stream_disconnects_total"}
    assert reasons == {*DISCONNECT_KINDS, "other"}
    rig.env.close()


async def test_http_requests_are_counted_by_route_template(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    create_env(tmp_path, streams=2)
    clocks = SimulatedClocks(T0)
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
    metrics = Metrics(env.db, clocks=clocks, dirs={env.dir_id: env.sdir}, syncers={},
                      streamers={})

    def client(bind: BindConfig):  # type: ignore[no-untyped-def]
        ctx = WebContext(db=env.db, dirs={env.dir_id: env.sdir}, clocks=clocks, bind=bind,
                         metrics=metrics)
        return create_app(ctx).test_client()

    public = client(BindConfig(allow_unauthenticated=("viewVideo",)))
    scraper = client(BindConfig("127.0.0.1:9180", metrics=True))
    uuids = [str(c.uuid) for c in env.db.cameras.values()]
    for u in uuids:
        assert (await public.get(f"/api/cameras/{u}/main/recordings")).status_code == 200
    assert (await public.get("/api/cameras/not-a-camera/main/recordings")).status_code == 404
    assert (await public.get("/api/")).status_code == 200
    assert (await public.get("/no/such/path/1234")).status_code == 404
    assert (await public.get("/metrics")).status_code == 404  # not on this bind
    # routing answers 405 (no rule matched); an unknown method counts as "other"
    assert (await public.open("/api/", method="BREW")).status_code == 405
    resp = await scraper.get("/metrics")
    assert resp.status_code == 200
    assert resp.content_type.startswith("text/plain; version=0.0.4")
    samples = parse(await resp.get_data(as_text=True))

    http = {dict(k[1])["route"]: {} for k in samples if k[0] == "nvr_http_requests_total"}
    for (name, labels), v in samples.items():
        if name == "nvr_http_requests_total":
            lv = dict(labels)
            http[lv["route"]][(lv["method"], lv["status"])] = v
    assert http == {
        "/api/cameras/<camera_uuid>/<stream_type>/recordings": {
            ("GET", "200"): 2, ("GET", "404"): 1},
        "/api/": {("GET", "200"): 1},
        "unmatched": {("GET", "404"): 1, ("other", "405"): 1},
        "/metrics": {("GET", "404"): 1},  # the scrape itself is counted after it
    }
    assert not any(u in str(k) for u in uuids for k in samples)
    env.close()


async def test_protected_video_over_budget_shows_in_metrics(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    rig = make_rig(tmp_path, [[Session(load_packets(CLIP), loops=None)]], retain_bytes=1 << 20)
    db = rig.env.db
    sid = rig.env.stream_ids[0]
    db.protect(db.streams[sid].camera_id, T0, T0 + 300 * SEC, "incident", expires=None, by="t")
    cam0 = {"camera": "cam0", "stream": "main"}
    async with trio.open_nursery() as outer:
        await outer.start(rig.syncer.run)
        async with trio.open_nursery() as ingest:
            ingest.start_soon(rig.streamers[0].run)
            await trio.sleep(600)
            mid = await rig.scrape()
            ingest.cancel_scope.cancel()
        outer.cancel_scope.cancel()
    st = db.streams[sid].retention
    assert st is not None and st.over_budget
    assert value(mid, "nvr_stream_protected_over_budget", **cam0) == 1
    assert value(mid, "nvr_stream_protected_bytes", **cam0) > 1 << 20
    # the first 5 minutes are all still there
    assert db.streams[sid].committed.range_start is not None
    assert db.streams[sid].committed.range_start <= T0 + 60 * SEC
    rig.env.close()
