"""The streamer on a mock clock, fed by ReplayOpener: exact recording tables, rotation,
timestamp trouble, sample-entry changes, stalls, backoff times and shutdown."""

from __future__ import annotations

import errno
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio
import trio.testing

from nvr.base import errors
from nvr.base.clock import SimulatedClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.db.types import FLAG_TRAILING_ZERO, ListedRecording
from nvr.ingest.source import OpenOptions, Packet
from nvr.ingest.streamer import Streamer, StreamerOptions
from nvr.offline.check import check
from nvr.syncer import Syncer
from nvr.testing.env import RecordingEnv, create_env, open_env
from nvr.testing.replay import ReplayOpener, Session, load_packets
from tests.support.determinism import T0
from tests.support.paths import FIXTURES

SEC = UNITS_PER_SEC
CLIP = str(FIXTURES / "h264-640x360.mp4")  # 20 s, 30 fps, a key frame every second
URL = "rtsp://cam0/main"
OPTS = StreamerOptions(jitter=0.0)


pytestmark = pytest.mark.usefixtures("inline_seam")


@dataclass
class Rig:
    env: RecordingEnv
    clocks: SimulatedClocks
    opener: ReplayOpener
    streamer: Streamer
    syncer: Syncer

    def recordings(self) -> list[ListedRecording]:
        return self.env.db.list_recordings_by_time(self.streamer.stream_id, 0, 1 << 62)


@pytest.fixture
async def rig_factory(tmp_path: Path, autojump_clock: trio.testing.MockClock) -> AsyncIterator:
    made: list[RecordingEnv] = []

    def make(
        sessions: Sequence[Session],
        options: StreamerOptions = OPTS,
        read_timeout: int = 10 * SEC,
        connect_timeout: int = 20 * SEC,
    ) -> Rig:
        create_env(tmp_path, streams=1, flush_if_sec=0)
        clocks = SimulatedClocks(T0)
        env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
        made.append(env)
        opener = ReplayOpener(clocks, {URL: sessions})
        syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
        streamer = Streamer(
            db=env.db,
            stream_id=env.stream_ids[0],
            sdir=env.sdir,
            sink=syncer,
            opener=opener,
            clocks=clocks,
            options=options,
            open_options=OpenOptions(
                read_timeout=read_timeout, connect_timeout=connect_timeout
            ),
        )
        return Rig(env, clocks, opener, streamer, syncer)

    yield make
    for env in made:
        env.close()


async def run_for(rig: Rig, duration: int) -> None:
    """Runs syncer and streamer for ``duration``, then shuts down in the daemon's order:
    streamers first (they close their recordings), then the syncer (final flush)."""
    async with trio.open_nursery() as outer:
        await outer.start(rig.syncer.run)
        with trio.move_on_after(duration / SEC):
            await rig.streamer.run()
        outer.cancel_scope.cancel()


async def test_started_when_connecting_and_idle_when_cancelled(rig_factory, autojump_clock) -> None:  # type: ignore[no-untyped-def]
    rig = rig_factory([Session(load_packets(CLIP), loops=None)])
    assert rig.streamer.state.value.kind == "idle"
    async with trio.open_nursery() as outer:
        await outer.start(rig.syncer.run)
        async with trio.open_nursery() as ingest:
            await ingest.start(rig.streamer.run)
            # connecting or further (the task may run on before this one resumes)
            assert rig.streamer.state.value.kind != "idle"
            assert rig.clocks.monotonic() == 0
            await rig.clocks.sleep(SEC)
            assert rig.streamer.state.value.kind == "recording"
            ingest.cancel_scope.cancel()
        assert rig.streamer.state.value.kind == "idle"
        assert rig.streamer.counters.recordings == 1  # closed and handed to the syncer
        outer.cancel_scope.cancel()


def table(recs: Sequence[ListedRecording]) -> list[tuple[int, int, int, int, int, int]]:
    """(run offset, start - T0, wall, media, frames, key frames) per recording."""
    return [
        (
            r.run_offset,
            r.start_time_90k - T0,
            r.wall_duration_90k,
            r.media_duration_90k,
            r.video_samples,
            r.video_sync_samples,
        )
        for r in recs
    ]


async def test_one_hour_of_replay_gives_an_exact_table(rig_factory, autojump_clock) -> None:  # type: ignore[no-untyped-def]
    rig = rig_factory([Session(load_packets(CLIP), loops=None)])
    await run_for(rig, 3600 * SEC + SEC // 2)
    recs = rig.recordings()
    minute = 60 * SEC
    # The run's first batch arrives at 0.3 s, so its first recording skips the boundary at
    # 60 s (less than an interval away) and ends at the key frame of 120 s.
    expected = [(0, 0, 2 * minute, 2 * minute, 3600, 120)]
    expected += [(k, (k + 1) * minute, minute, minute, 1800, 60) for k in range(1, 59)]
    # Shut down at 3600.5 s: every frame received by then is kept (the batch delivered at
    # 3600.3 s and, drained from the source, the frames due up to 3600.5 s: 16 in all),
    # the last one with duration 0.
    expected.append((59, 60 * minute, 15 * 3000, 15 * 3000, 16, 1))
    assert table(recs) == expected
    assert recs[-1].flags & FLAG_TRAILING_ZERO
    assert [r.prev_media_duration_90k for r in recs[:3]] == [0, 2 * minute, 3 * minute]
    assert rig.opener.open_times(URL) == [0]
    assert rig.streamer.counters.frames_dropped == 0


async def test_disconnect_backs_off_exponentially_then_resets(rig_factory, autojump_clock) -> None:  # type: ignore[no-untyped-def]
    packets = load_packets(CLIP)
    auth = errors.Unauthenticated("401 Unauthorized")
    sessions = [
        Session(packets, end_after=95),  # EOF after 3.17 s of video
        Session(open_error=auth),
        Session(open_error=auth),
        Session(packets, loops=None),
    ]
    rig = rig_factory(sessions)
    await run_for(rig, 60 * SEC)
    # EOF when the 10th batch would be due (frames 90..94 delivered at 3.133 s; the EOF
    # comes at once after), then backoff 1 s, 2 s, 4 s.
    eof = 94 * 3000
    assert rig.opener.open_times(URL) == [0, eof + SEC, eof + 3 * SEC, eof + 7 * SEC]
    recs = rig.recordings()
    assert [(r.run_offset, r.video_samples) for r in recs[:1]] == [(0, 95)]
    assert recs[0].flags & FLAG_TRAILING_ZERO
    assert rig.streamer.counters.disconnects == {"eof": 1, "open failed": 2}
    state = rig.streamer.state.value
    assert state.last_error is not None and "Unauthenticated" in state.last_error


async def test_failures_and_recovery_are_warnings_naming_the_camera_and_stream(
    rig_factory, autojump_clock, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    """Issue 17: the first failure and the recovery are WARNINGs, repeats at most one line a
    minute, the stream named by camera and type (never by URL); a session that recorded
    resets the backoff, and a camera that stays down is retried every 10 s."""
    packets = load_packets(CLIP)
    down = errors.Unavailable("Connection refused")
    sessions = [Session(packets, end_after=95)]  # EOF at 94 frames' time
    sessions += [Session(open_error=down)] * 9
    sessions += [Session(packets, end_after=95), Session(open_error=down)]
    sessions += [Session(packets, loops=None)]
    rig = rig_factory(sessions)
    streamer_log = "nvr.ingest.streamer"
    with caplog.at_level(logging.INFO, logger=streamer_log):
        await run_for(rig, 120 * SEC)
    eof = 94 * 3000
    # backoff 1, 2, 4, 8, 10, 10... s; reset after the session that recorded
    gaps = [1, 2, 4, 8, 10, 10, 10, 10, 10, 10]
    opens = [0] + [eof + SEC * sum(gaps[: i + 1]) for i in range(len(gaps))]
    back = opens[-1] + eof  # the second recorded session's EOF
    opens += [back + SEC, back + 3 * SEC]
    assert rig.opener.open_times(URL) == opens
    name = "cam0 main"
    refused = f"{name}: Unavailable: Connection refused"
    # The first failure at once; the refusals of the next minute held back, then one line
    # with their count; recovery when the first batch is recorded (0.3 s after the open)
    # says for how long the stream failed. The second outage logs its first failure at
    # once again (its refusal within the minute is held back).
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == streamer_log]
    assert lines == [
        ("WARNING", f"{name}: the camera ended the stream"),
        ("WARNING", f"{refused} (and 8 more times in the last minute)"),
        ("WARNING", f"{name}: recording again, after 10 failed sessions over 1m15.300s"),
        ("WARNING", f"{name}: the camera ended the stream"),
        ("WARNING", f"{name}: recording again, after 2 failed sessions over 3.300s"),
    ]


async def test_timestamp_trouble_ends_the_run(rig_factory, autojump_clock) -> None:  # type: ignore[no-untyped-def]
    packets = load_packets(CLIP)
    # frame 100 jumps 10 s ahead, frame 310 goes 30 s back, frame 455 repeats a pts
    shifts = {100: 10 * SEC, 310: -30 * SEC, 455: -3000}
    rig = rig_factory([Session(packets, loops=1, pts_shifts=shifts), Session(packets, loops=None)])
    await run_for(rig, 19 * SEC)
    recs = rig.recordings()
    # Each problem ends the run with a trailing zero; the next run starts at the next key
    # frame (120, 330, 480); the frames between are dropped.
    assert [(r.run_offset, r.video_samples) for r in recs] == [
        (0, 100),
        (0, 190),
        (0, 125),
        (0, 91),  # frames 480..570: the one due at the shutdown instant (19 s) is kept
    ]
    assert all(r.flags & FLAG_TRAILING_ZERO for r in recs)
    assert rig.streamer.counters.frames_dropped == 20 + 20 + 25
    assert [r.prev_runs for r in recs] == [0, 1, 2, 3]


async def test_sample_entry_change_starts_a_new_recording_in_the_same_run(
    rig_factory, autojump_clock
) -> None:  # type: ignore[no-untyped-def]
    packets = load_packets(str(FIXTURES / "h264-res-change.ts"))
    rig = rig_factory([Session(packets, loops=1), Session(open_error=errors.Unavailable("x"))])
    await run_for(rig, 10 * SEC)
    recs = rig.recordings()
    assert [(r.run_offset, r.video_samples, r.media_duration_90k) for r in recs] == [
        (0, 90, 90 * 3000),
        (1, 90, 89 * 3000),
    ]
    widths = [rig.env.db.video_sample_entries[r.video_sample_entry_id].width for r in recs]
    assert widths == [640, 320]
    assert recs[1].start_time_90k == recs[0].end_time_90k


async def test_stall_is_detected_after_the_read_timeout(rig_factory, autojump_clock) -> None:  # type: ignore[no-untyped-def]
    packets = load_packets(CLIP)
    rig = rig_factory(
        [Session(packets, stall_after=60), Session(packets, loops=None)], read_timeout=4 * SEC
    )
    await run_for(rig, 30 * SEC)
    # The 6th batch (frames 50..59) is due at 1.967 s; then nothing. The streamer gives up
    # read_timeout + 5 s after it last asked, and reconnects after 1 s of backoff.
    last_batch = 59 * 3000
    assert rig.opener.open_times(URL) == [0, last_batch + 9 * SEC + SEC]
    assert rig.streamer.counters.disconnects == {"stall": 1}


async def test_a_slow_connect_times_out_and_is_retried(rig_factory, autojump_clock) -> None:  # type: ignore[no-untyped-def]
    """A camera whose handshake never completes (issue 12, point 6) gets a timeout at the
    connect deadline, as its own error, and is retried with backoff: the streamer never
    stays ``connecting`` longer than the deadline."""
    hour = 3600 * SEC
    slow = Session(open_delay=hour)
    sessions = [slow, slow, Session(load_packets(CLIP), loops=None)]
    rig = rig_factory(sessions, connect_timeout=5 * SEC)
    seen: list[tuple[str, int, int | None]] = []  # (kind, since - T0, next try - T0)

    async def sample_states() -> None:
        for at in (4, 5.5, 10.5, 12.5, 14):  # seconds
            await rig.clocks.sleep_until(round(at * SEC))
            st = rig.streamer.state.value
            seen.append((st.kind, st.since - T0, st.next_try and st.next_try - T0))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sample_states)
        await run_for(rig, 20 * SEC)
    # timed out at 5 s, backoff 1 s; timed out at 11 s, backoff 2 s; then it records
    assert seen == [
        ("connecting", 0, None),
        ("backoff", 5 * SEC, 6 * SEC),
        ("connecting", 6 * SEC, None),
        ("backoff", 11 * SEC, 13 * SEC),
        ("recording", 13 * SEC, None),
    ]
    assert rig.opener.open_times(URL) == [0, 6 * SEC, 13 * SEC]
    assert rig.streamer.counters.disconnects == {"connect timeout": 2}
    assert rig.streamer.state.value.last_error == (
        "Unavailable: rtsp://cam0/main: timed out: no complete answer within 5.000s of "
        "connecting"
    )
    assert rig.recordings()[0].start_time_90k >= T0 + 13 * SEC


async def test_write_failures_are_warnings_at_most_once_a_minute(
    rig_factory, autojump_clock, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    """A full disk ends every session at its first write; that is the recorder's problem,
    not the camera's: a WARNING (not INFO, as camera trouble is), at most once a minute
    (issue 12, point 9)."""
    rig = rig_factory([Session(load_packets(CLIP), loops=None)])
    rig.env.sdir.fail("write_all", errno.ENOSPC)
    with caplog.at_level(logging.INFO, logger="nvr.ingest.streamer"):
        await run_for(rig, 5 * 60 * SEC)
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    sessions = rig.streamer.counters.disconnects["ResourceExhausted"]
    assert sessions == rig.streamer.counters.sessions >= 8  # 1, 2, 4 ... 60 s apart
    assert {level for level, _ in lines} == {"WARNING"}
    assert 5 <= len(lines) <= 6, lines  # 5 minutes
    assert all("ResourceExhausted: " in m and "No space left on device" in m for _, m in lines)
    assert "more times in the last minute)" in lines[1][1]


async def test_recording_without_key_frames_is_cut_at_five_minutes(
    rig_factory, autojump_clock
) -> None:  # type: ignore[no-untyped-def]
    entry = load_packets(CLIP)[0].sample_entry
    key = Packet(b"\0\0\0\1\x65" + b"k" * 100, 0, True, entry)
    frames = [key] + [Packet(b"\0\0\0\1\x41p", i * SEC, False, entry) for i in range(1, 400)]
    rig = rig_factory(
        [Session(frames, loops=1, batch=1), Session(open_error=errors.Unavailable("x"))]
    )
    await run_for(rig, 420 * SEC)
    recs = rig.recordings()
    assert len(recs) == 1
    assert recs[0].wall_duration_90k < 300 * SEC
    assert recs[0].video_samples == 300  # frames 0..299; frame 300 would cross the limit
    assert rig.streamer.counters.disconnects["too long"] == 1


async def test_cancellation_closes_and_commits_the_open_recording(
    rig_factory, autojump_clock
) -> None:  # type: ignore[no-untyped-def]
    rig = rig_factory([Session(load_packets(CLIP), loops=None)])
    await run_for(rig, 135 * SEC + SEC // 2)
    recs = rig.recordings()
    # every frame due by 135.5 s (4,066 of them) is recorded, the ones drained at shutdown too
    assert [(r.video_samples, r.committed) for r in recs] == [(3600, True), (466, True)]
    assert recs[1].flags & FLAG_TRAILING_ZERO
    assert rig.env.db.streams[rig.streamer.stream_id].pending == []
    rig.env.close()
    assert check(rig.env.db_dir).problems == []
