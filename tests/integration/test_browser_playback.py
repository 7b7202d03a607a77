"""Chromium plays what the daemon serves (issue 4): a ``view.mp4`` in a ``<video>`` element
to the end, and ``/api/init/<id>.mp4`` plus consecutive ``view.m4s`` segments appended
through ``MediaSource``, the way Moonfire NVR's UI does it (``SourceBuffer.timestampOffset``
from ``X-Prev-Media-Duration``).

The real daemon serves the playback library (``tests/support/playback.py``) read-only in
a thread; the page is opened on its origin (a ``.txt`` debug page) and replaced with
``set_content``, so the media requests are same-origin. Clips are a few seconds long and
played faster than real time.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.playback import SEC, Library, library, library_url

__all__ = ["library", "library_url"]  # fixtures

CODEC = 'video/mp4; codecs="avc1.64001e"'
#: how long the page may take for anything it waits on (ms)
DEADLINE_MS = 20_000

# Promises the page awaits, each with a deadline (so a test fails instead of hanging).
HELPERS = """() => {
window.within = (promise, what) => Promise.race([promise, new Promise((_, fail) =>
    setTimeout(() => fail(new Error('timed out: ' + what)), DEADLINE_MS))]);
window.once = (target, name, what) => within(new Promise((ok, fail) => {
    target.addEventListener(name, ok, {once: true});
    target.addEventListener('error', () => fail(new Error(what + ': error ' +
        (target.error ? target.error.code + ' ' + target.error.message : ''))), {once: true});
}), what);
window.ranges = (r) => Array.from({length: r.length}, (_, i) => [r.start(i), r.end(i)]);
}""".replace("DEADLINE_MS", str(DEADLINE_MS))


@pytest.fixture
def origin_page(page: Any, library_url: str) -> Any:
    """A blank page on the daemon's origin, with the helpers above."""
    page.goto(library_url + "/api/init/2.mp4.txt")
    page.set_content("<!doctype html><video id=v muted></video>")
    page.evaluate(HELPERS)
    assert page.evaluate(f"MediaSource.isTypeSupported('{CODEC}')"), "no H.264 in this Chromium"
    return page


def test_video_element_plays_view_mp4_to_the_end(origin_page: Any, library: Library) -> None:
    # 0.5 s to 3.5 s of the first recording: the file starts at the key frame at 0 s and
    # its edit list skips the first half second
    url = library.view_path("small") + f"?s=0.{SEC // 2}-{7 * SEC // 2}"
    result = origin_page.evaluate(
        """async (url) => {
            const v = document.getElementById('v');
            v.src = url;
            await once(v, 'loadedmetadata', 'metadata');
            const duration = v.duration;
            v.playbackRate = 4;
            await within(v.play(), 'play');
            await once(v, 'ended', 'playing to the end');
            return {duration, ended: v.ended, currentTime: v.currentTime,
                    played: ranges(v.played), width: v.videoWidth, height: v.videoHeight,
                    frames: v.getVideoPlaybackQuality().totalVideoFrames};
        }""",
        url,
    )
    assert result["duration"] == 3  # the edit list's length, to the microsecond
    assert result["ended"] is True
    assert result["currentTime"] == result["duration"]
    assert (result["width"], result["height"]) == (640, 360)
    # it played all of it, from the start (not a seek to the end)
    assert result["played"] == [[0, 3]]
    # every frame of the 3 s (30 fps) was decoded for presentation
    assert result["frames"] == 90


def test_media_source_plays_init_and_consecutive_m4s(origin_page: Any, library: Library) -> None:
    small = library.recordings["small"]
    assert small[0].media_duration_90k == 20 * SEC and small[1].run_offset == 1
    # the last second of recording 0 and the first two of recording 1 (same run), each
    # starting at a key frame
    m4s = library.view_path("small", "m4s")
    segments = [f"{m4s}?s=0.{19 * SEC}-", f"{m4s}?s=1.0-{SEC}", f"{m4s}?s=1.{SEC}-{2 * SEC}"]
    init = f"/api/init/{small[0].entry_id}.mp4"
    result = origin_page.evaluate(
        """async ([init, segments, codec]) => {
            const v = document.getElementById('v');
            const ms = new MediaSource();
            v.src = URL.createObjectURL(ms);
            await once(ms, 'sourceopen', 'sourceopen');
            const sb = ms.addSourceBuffer(codec);
            const get = async (url) => {
                const r = await within(fetch(url), url);
                if (r.status !== 200) throw new Error(url + ': ' + r.status);
                return r;
            };
            const append = async (data, what) => {
                const done = once(sb, 'updateend', what);
                sb.appendBuffer(data);
                await done;
            };
            await append(await (await get(init)).arrayBuffer(), 'init');
            const buffered = [], offsets = [];
            for (const url of segments) {
                const r = await get(url);
                offsets.push(r.headers.get('X-Prev-Media-Duration'));
                sb.timestampOffset = Number(r.headers.get('X-Prev-Media-Duration')) / 90000;
                await append(await r.arrayBuffer(), url);
                buffered.push(ranges(sb.buffered));
            }
            ms.endOfStream();
            v.currentTime = buffered[0][0][0];
            await once(v, 'seeked', 'seek');
            v.playbackRate = 2;
            await within(v.play(), 'play');
            await once(v, 'ended', 'playing to the end');
            return {buffered, offsets, ended: v.ended, currentTime: v.currentTime,
                    duration: v.duration, played: ranges(v.played)};
        }""",
        [init, segments, CODEC],
    )
    assert result["offsets"] == ["0", str(20 * SEC), str(20 * SEC)]
    # after each append, one contiguous range from 19 s growing by a second (Chromium
    # reports the end a microsecond short)
    for n, buffered in enumerate(result["buffered"]):
        assert len(buffered) == 1, buffered
        start, end = buffered[0]
        assert start == 19
        assert abs(end - (20 + n)) <= 1e-5, buffered
    assert result["ended"] is True
    assert abs(result["duration"] - 22) <= 1e-5
    assert result["currentTime"] == result["duration"]
    # it played from 19 s through the first segment and the next ones to 22 s
    assert len(result["played"]) == 1, result["played"]
    assert result["played"][0][0] == 19 and abs(result["played"][0][1] - 22) <= 1e-5


# --- a change of sample entry (640x360, then 320x240) ------------------------------------------


def test_media_source_plays_across_a_sample_entry_change(
    origin_page: Any, library: Library
) -> None:
    small = library.recordings["small"]
    before, after = small[3], small[4]  # one run: 3 s at 640x360, then 320x240
    assert (before.width, after.width, after.run_offset) == (640, 320, 1)
    assert before.entry_id != after.entry_id
    m4s = library.view_path("small", "m4s")
    # each media segment after its own init segment, as Moonfire NVR's UI does
    steps = [
        [f"/api/init/{r.entry_id}.mp4", f"{m4s}?s={r.recording_id}"] for r in (before, after)
    ]
    result = origin_page.evaluate(
        """async ([steps, codec]) => {
            const v = document.getElementById('v');
            const ms = new MediaSource();
            v.src = URL.createObjectURL(ms);
            await once(ms, 'sourceopen', 'sourceopen');
            const sb = ms.addSourceBuffer(codec);
            const append = async (url) => {
                const r = await within(fetch(url), url);
                if (r.status !== 200) throw new Error(url + ': ' + r.status);
                const prev = r.headers.get('X-Prev-Media-Duration');
                if (prev !== null) sb.timestampOffset = Number(prev) / 90000;
                const done = once(sb, 'updateend', url);
                sb.appendBuffer(await r.arrayBuffer());
                await done;
            };
            const buffered = [];
            for (const [init, segment] of steps) {
                await append(init);
                await append(segment);
                buffered.push(ranges(sb.buffered));
            }
            ms.endOfStream();
            v.currentTime = buffered[0][0][0];
            await once(v, 'seeked', 'seek');
            const sizes = [];
            v.addEventListener('resize', () => sizes.push([v.videoWidth, v.videoHeight]));
            v.playbackRate = 4;
            await within(v.play(), 'play');
            await once(v, 'ended', 'playing to the end');
            return {buffered, sizes, ended: v.ended, currentTime: v.currentTime,
                    width: v.videoWidth, height: v.videoHeight,
                    frames: v.getVideoPlaybackQuality().totalVideoFrames};
        }""",
        [steps, CODEC],
    )
    start = before.prev_media_duration_90k / SEC
    end = start + (before.media_duration_90k + after.media_duration_90k) / SEC
    assert len(result["buffered"][1]) == 1, result["buffered"]
    assert abs(result["buffered"][1][0][0] - start) <= 1e-5
    assert abs(result["buffered"][1][0][1] - end) <= 1e-5
    assert result["ended"] is True and abs(result["currentTime"] - end) <= 1e-5
    assert [320, 240] in result["sizes"]
    assert (result["width"], result["height"]) == (320, 240)
    assert result["frames"] == len(before.frames) + len(after.frames)


def test_video_element_plays_across_a_sample_entry_change(
    origin_page: Any, library: Library
) -> None:
    small = library.recordings["small"]
    url = library.view_path("small") + f"?s={small[3].recording_id}-{small[4].recording_id}"
    result = origin_page.evaluate(
        """async (url) => {
            const v = document.getElementById('v');
            v.src = url;
            await once(v, 'loadedmetadata', 'metadata');
            v.playbackRate = 4;
            await within(v.play(), 'play');
            await once(v, 'ended', 'playing to the end');
            return {ended: v.ended, width: v.videoWidth};
        }""",
        url,
    )
    assert result == {"ended": True, "width": 320}


def test_video_element_seeks_to_every_key_frame_across_sample_entry_changes(
    origin_page: Any, library: Library
) -> None:
    """A file whose sample entry changes every 3 s (640x360, 320x240, 640x360, 320x240):
    a seek into each GOP, each time from a GOP of the other entry, presents the GOP's
    picture at its own size. Chromium's decoder keeps the parameter sets it last had; a
    key frame without its own in-band copy failed with PIPELINE_ERROR_DECODE (issue 12)."""
    recs = library.recordings["small"][7:]  # the fourth run
    assert [r.width for r in recs] == [640, 320, 640, 640, 320]
    assert len({r.entry_id for r in recs}) == 2
    # the key frames' times in the file (the recordings abut) and each one's width
    keys: dict[float, int] = {}
    track = 0
    for r in recs:
        keys |= {(track + f.start_90k) / SEC: r.width for f in r.frames if f.is_key}
        track += r.media_duration_90k
    assert list(keys) == [float(k) for k in range(12)], keys

    # every seek lands half a second into a GOP whose entry differs from the last one shown
    order = [k + 0.5 for pair in zip([0, 1, 2, 6, 7, 8], [3, 4, 5, 9, 10, 11], strict=True)
             for k in pair]
    url = library.view_path("small") + f"?s={recs[0].recording_id}-{recs[-1].recording_id}"
    result = origin_page.evaluate(
        """async ([url, order]) => {
            const v = document.getElementById('v');
            const frame = (what) => within(new Promise((ok) =>
                v.requestVideoFrameCallback((now, m) => ok(m))), what);
            const first = frame('the first frame');
            v.src = url;
            await first;
            const shown = [];
            for (const t of order) {
                const presented = frame('a frame at ' + t);
                const seeked = once(v, 'seeked', 'seek to ' + t);
                v.currentTime = t;
                await seeked;
                const m = await presented;
                shown.push({t, width: m.width, height: m.height, mediaTime: m.mediaTime,
                            error: v.error ? v.error.code + ' ' + v.error.message : null});
                if (v.error) break;
            }
            return shown;
        }""",
        [url, order],
    )
    assert [s["error"] for s in result] == [None] * len(order), result
    assert [(s["t"], s["width"]) for s in result] == [(t, keys[t - 0.5]) for t in order]
    # the frame shown is the one the seek asked for (frames of 1/30 s)
    assert all(abs(s["mediaTime"] - s["t"]) <= 1 / 30 for s in result), result
