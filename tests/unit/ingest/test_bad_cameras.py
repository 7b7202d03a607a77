"""Bad cameras beside a good one (issue 7), deterministically on a MockClock.

Seven streams record into one directory through one syncer for 12 simulated minutes:
one good camera and six bad ones (timestamps that jump ahead a day, go backwards and
repeat; minutes without a key frame; a resolution change; garbage mid-stream; rejected
credentials). Each bad camera ends up with a clear state and a reason in its recordings,
and the good camera's recording is exactly what it would be alone: one session, one
run, contiguous, every frame due by the shutdown.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import pytest
import trio
import trio.testing

from nvr.base import errors
from nvr.base.clock import SimulatedClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.db.types import ListedRecording
from nvr.ingest.source import OpenOptions, Packet
from nvr.ingest.streamer import Streamer, StreamerOptions
from nvr.offline.check import check
from nvr.syncer import Syncer
from nvr.testing.env import create_env, open_env
from nvr.testing.replay import ReplayOpener, Session, load_packets
from tests.support.determinism import T0
from tests.support.paths import FIXTURES

SEC = UNITS_PER_SEC
MINUTE = 60 * SEC
FRAME = 3000
CLIP = str(FIXTURES / "h264-640x360.mp4")
RES_CHANGE = str(FIXTURES / "h264-res-change.ts")
RUN_FOR = 12 * MINUTE + SEC // 2
NAMES = ("good", "day jump", "backwards", "no key", "res change", "garbage", "bad login")


pytestmark = pytest.mark.usefixtures("inline_seam")


def without_key_frames(minutes: int) -> list[Packet]:
    """One GOP of the clip, then ``minutes`` of frames none of which is a key frame."""
    packets = load_packets(CLIP)
    first = list(packets[:30])
    later = [
        replace(packets[1 + i % 29], pts=(30 + i) * FRAME, is_key=False)
        for i in range(minutes * 60 * 30)
    ]
    return first + later


def scripts() -> dict[str, list[Session]]:
    clip = load_packets(CLIP)
    forever = Session(clip, loops=None)
    return {
        "good": [forever],
        "day jump": [Session(clip, loops=None, pts_shifts={600: 86_400 * SEC})],
        "backwards": [Session(clip, loops=None, pts_shifts={600: -30 * SEC, 1200: -FRAME})],
        "no key": [Session(without_key_frames(6), loops=1), forever],
        "res change": [Session(load_packets(RES_CHANGE), loops=None)],
        "garbage": [
            Session(clip, loops=None, error_after=(450, errors.DataLoss("invalid NAL unit"))),
            forever,
        ],
        "bad login": [Session(open_error=errors.Unauthenticated("401 Unauthorized"))],
    }


async def test_bad_cameras_get_clear_states_and_the_good_one_records_unaffected(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    create_env(tmp_path, streams=len(NAMES), flush_if_sec=0)
    clocks = SimulatedClocks(T0)
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
    try:
        sids = dict(zip(NAMES, env.stream_ids, strict=True))
        urls = {name: env.db.streams[sid].config.url for name, sid in sids.items()}
        opener = ReplayOpener(clocks, {urls[n]: s for n, s in scripts().items()})
        syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
        options = StreamerOptions(jitter=0.0, rotate_interval=MINUTE)
        streamers = {
            name: Streamer(
                db=env.db,
                stream_id=sid,
                sdir=env.sdir,
                sink=syncer,
                opener=opener,
                clocks=clocks,
                options=options,
                open_options=OpenOptions(),
            )
            for name, sid in sids.items()
        }
        async with trio.open_nursery() as outer:
            await outer.start(syncer.run)
            with trio.move_on_after(RUN_FOR / SEC):
                async with trio.open_nursery() as ingest:
                    for s in streamers.values():
                        ingest.start_soon(s.run)
            outer.cancel_scope.cancel()

        def recs(name: str) -> list[ListedRecording]:
            return env.db.list_recordings_by_time(sids[name], 0, 1 << 62)

        # the good camera: one session, one run, contiguous, every frame due by the end
        good = recs("good")
        assert streamers["good"].counters.sessions == 1
        assert [r.run_offset for r in good] == list(range(len(good)))
        assert all(a.end_time_90k == b.start_time_90k for a, b in itertools.pairwise(good))
        assert sum(r.video_samples for r in good) == RUN_FOR // FRAME + 1
        assert streamers["good"].counters.frames_dropped == 0

        # a day's jump ends the run (same session) and says so
        jump = recs("day jump")
        assert streamers["day jump"].counters.sessions == 1
        assert [r.end_reason for r in jump if r.end_reason and "jumped" in r.end_reason] == [
            "timestamps jumped ahead by 24h00m00.033s"
        ]
        assert max(r.prev_runs for r in jump) == 1

        back = [r.end_reason for r in recs("backwards") if r.end_reason != "shutdown"]
        assert [e for e in back if e] == [
            "timestamps went backwards by 29.967s",
            "timestamp repeated",
        ]

        # minutes without a key frame: the recording is closed at 5 minutes, the session
        # dropped and retried; the camera then records normally again
        no_key = streamers["no key"]
        assert no_key.counters.disconnects == {"too long": 1}
        long_one = recs("no key")[0]
        assert 5 * MINUTE - SEC < long_one.media_duration_90k < 5 * MINUTE
        assert "5 minutes" in (long_one.end_reason or "")
        assert no_key.counters.sessions == 2

        # a resolution change: a new recording in the same run for each sample entry
        res = recs("res change")
        widths = [env.db.video_sample_entries[r.video_sample_entry_id].width for r in res]
        assert widths[:4] == [640, 320, 640, 320]
        assert {r.prev_runs for r in res} == {0}

        # garbage mid-stream: the session ends with the reason, the camera is retried
        garbage = streamers["garbage"]
        assert garbage.counters.disconnects == {"DataLoss": 1}
        assert recs("garbage")[0].end_reason == "DataLoss: invalid NAL unit"
        assert garbage.counters.sessions == 2

        # rejected credentials: backoff with the reason, retried on a capped schedule
        bad = streamers["bad login"].state.value
        assert bad.kind == "idle"  # cancelled at shutdown; the last error stays
        assert bad.last_error == "Unauthenticated: 401 Unauthorized"
        opens = opener.open_times(urls["bad login"])
        gaps = [b - a for a, b in itertools.pairwise(opens)]
        assert gaps[:5] == [1 * SEC, 2 * SEC, 4 * SEC, 8 * SEC, 10 * SEC]
        assert set(gaps[4:]) == {10 * SEC}
        assert recs("bad login") == []
    finally:
        env.close()
    assert check(env.db_dir).problems == []
