"""``view.mp4`` over real HTTP from the real daemon (issue 4's playback tests).

The daemon (``nvr.daemon.run``, read-only) serves a library recorded from the fixture
clips (``tests/support/playback.py``) on a port-0 loopback bind in a thread of its own;
the tests are synchronous ``httpx`` clients. For every file checked: PyAV decodes every
frame of the track (``ignore_editlist``), each at its index time to the tick and showing
the expected picture; the ``elst`` is exactly what the ``s=`` values ask for; FFmpeg's
presentation through the edit list is as modelled (one sample entry); ``ffprobe``
reports the movie's duration; a set of ``Range`` requests reassembles to the body;
``If-None-Match`` gives ``304`` and a stale ``If-Range`` the whole body.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Iterator, Sequence

import httpx
import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, event, given, settings

from nvr.web.view import SampleReader
from tests.support.media import decoded_frames, edit_list, ffprobe
from tests.support.playback import (
    SEC,
    Expected,
    Library,
    LibRec,
    SSpec,
    expected_view,
    library,
    library_url,
)

__all__ = ["library", "library_url"]  # fixtures


@pytest.fixture(scope="module")
def http(library_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=library_url, timeout=30) as client:
        yield client


def params(specs: Sequence[SSpec | str]) -> list[tuple[str, str]]:
    return [("s", str(s)) for s in specs]


def ffmpeg_presentation(expected: Expected) -> list[tuple[int, int, int]]:
    """(pts, frame number, width) of the frames FFmpeg's mov demuxer presents through the
    edit list: per edit, the frames starting inside it, at the edit's presentation time
    plus their offset from the first of them; then all shifted so the first is at 0."""
    if not expected.edits:
        return [(f.track_time, f.number, f.width) for f in expected.frames]
    out: list[tuple[int, int, int]] = []
    presentation = 0
    for media_time, duration in expected.edits:
        kept = [f for f in expected.frames if media_time <= f.track_time < media_time + duration]
        out += [(presentation + f.track_time - kept[0].track_time, f.number, f.width) for f in kept]
        presentation += duration
    return [(pts - out[0][0], n, w) for pts, n, w in out] if out else []


def check_view(
    http: httpx.Client,
    library: Library,
    stream: str,
    specs: Sequence[SSpec],
    cuts: Sequence[int] = (),
) -> bytes:
    """Fetches the view.mp4 of ``specs`` and checks it against the model (see the module
    docstring); ``cuts`` (fractions of the size, in 1/1000) split it into ranges."""
    path = library.view_path(stream)
    expected = expected_view(library.recordings[stream], specs)
    resp = http.get(path, params=params(specs))
    if expected.error is not None:
        assert resp.status_code == expected.error, resp.text
        assert resp.headers["Content-Type"].startswith("text/plain")
        assert resp.text.count("\n") == 1
        return b""
    assert resp.status_code == 200, resp.text
    body = resp.content
    assert len(body) == int(resp.headers["Content-Length"])
    etag = resp.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{16,}"', etag)

    # every frame of the track, at its index time, showing the expected picture
    assert decoded_frames(body, ignore_editlist=True) == [
        (f.track_time, f.number, f.width) for f in expected.frames
    ]
    # the edit list, to the tick: playback starts (and each segment ends) where asked
    assert edit_list(body) == expected.edits
    # (without an edit list, FFmpeg's presentation is the track: decoded above)
    if expected.edits and len({f.width for f in expected.frames}) == 1:
        assert decoded_frames(body, ignore_editlist=False) == ffmpeg_presentation(expected)
    probe = ffprobe(body)
    duration = float(probe["format"]["duration"])  # type: ignore[index]
    # ffprobe prints microseconds, finer than a 90k tick
    assert abs(duration - expected.duration_90k / SEC) <= 1e-6, (duration, expected.duration_90k)

    # ranges reassemble to the body
    size = len(body)
    points = sorted({0, size, *(size * c // 1000 for c in cuts)})
    parts = []
    for a, b in itertools.pairwise(points):
        if a == b:
            continue
        r = http.get(path, params=params(specs), headers={"Range": f"bytes={a}-{b - 1}"})
        assert r.status_code == 206
        assert r.headers["Content-Range"] == f"bytes {a}-{b - 1}/{size}"
        assert r.headers["ETag"] == etag
        parts.append(r.content)
    assert b"".join(parts) == body
    tail = min(size, 1000)
    r = http.get(path, params=params(specs), headers={"Range": f"bytes=-{tail}"})
    assert (r.status_code, r.content) == (206, body[-tail:])

    # conditional requests
    r = http.get(path, params=params(specs), headers={"If-None-Match": etag})
    assert (r.status_code, r.content, r.headers["ETag"]) == (304, b"", etag)
    r = http.get(path, params=params(specs), headers={"If-None-Match": f'"other", W/{etag}'})
    assert r.status_code == 304
    r = http.get(path, params=params(specs), headers={"If-None-Match": '"other"'})
    assert (r.status_code, r.content) == (200, body)
    r = http.get(path, params=params(specs), headers={"Range": "bytes=0-99", "If-Range": etag})
    assert (r.status_code, r.content) == (206, body[:100])
    date = resp.headers["Last-Modified"]
    r = http.get(path, params=params(specs), headers={"Range": "bytes=0-99", "If-Range": date})
    assert (r.status_code, r.content) == (206, body[:100])
    r = http.get(path, params=params(specs),
                 headers={"Range": "bytes=0-99", "If-Range": '"stale"'})
    assert (r.status_code, r.content) == (200, body)
    assert "Content-Range" not in r.headers
    return body


# --- one large file ----------------------------------------------------------------------------


def test_a_large_multi_recording_file(http: httpx.Client, library: Library) -> None:
    recs = library.recordings["big"]
    assert len(recs) >= 3
    body = check_view(http, library, "big", [SSpec(0, recs[-1].recording_id)],
                      cuts=[1, 333, 500, 501, 999])
    assert len(body) > 8 << 20
    r = http.get(library.view_path("big"), params={"s": f"0-{recs[-1].recording_id}"})
    assert r.headers["Content-Disposition"] == 'inline; filename="20231114221400-cam1-main.mp4"'
    assert r.headers["Cache-Control"] == "private, no-cache"
    assert r.headers["Last-Modified"] == "Tue, 14 Nov 2023 22:18:09 GMT"
    # unsatisfiable range
    r = http.get(library.view_path("big"), params={"s": "0"}, headers={"Range": "bytes=999999999-"})
    assert r.status_code == 416


def test_the_library_is_as_described(library: Library) -> None:
    def shape(recs: list[LibRec]) -> list[tuple[int, int, int, int, bool]]:
        return [(r.prev_runs, r.run_offset, r.media_duration_90k // SEC, r.width, r.trailing_zero)
                for r in recs]

    assert shape(library.recordings["small"]) == [
        (0, 0, 20, 640, False), (0, 1, 10, 640, False), (0, 2, 9, 640, True),
        (1, 0, 3, 640, False), (1, 1, 2, 320, True),
        (2, 0, 11, 640, False), (2, 1, 8, 640, True),
        (3, 0, 3, 640, False), (3, 1, 3, 320, False), (3, 2, 1, 640, False),
        (3, 3, 2, 640, False), (3, 4, 2, 320, True),
    ]
    # the s= times of the third run's last recording are wall times, scaled to its media
    # time
    last = library.recordings["small"][6]
    assert last.media_duration_90k - last.wall_duration_90k == 300
    assert {f.duration_90k for f in last.frames} == {3000, 3300, 0}
    assert shape(library.recordings["big"]) == [
        (0, 0, 120, 640, False), (0, 1, 60, 640, False), (0, 2, 60, 640, False),
        (0, 3, 9, 640, True),
    ]


# --- generated s= lists ------------------------------------------------------------------------


@st.composite
def s_lists(draw: st.DrawFn, recs: list[LibRec]) -> list[SSpec]:
    """1 to 4 s= values over ``recs``: spans of up to 3 recordings (across runs too),
    relative starts and ends anywhere (on a key frame or a frame boundary, or not; past
    the end), with or without the open id; sometimes a value repeated. Values before the
    last mostly end before a trailing zero (else the file is refused: nothing may follow
    one)."""
    out: list[SSpec] = []
    n = draw(st.integers(1, 4))
    for i in range(n):
        if out and draw(st.integers(0, 4)) == 0:
            out.append(out[-1])
            continue
        a = draw(st.integers(0, len(recs) - 1))
        b = draw(st.integers(a, min(a + 2, len(recs) - 1)))
        span = sum(r.wall_duration_90k for r in recs[a : b + 1])
        start = end = None
        if draw(st.booleans()):
            start = draw(st.integers(0, span - 1))
            snap = draw(st.sampled_from([1, 3000, SEC]))  # any tick, a frame, a key frame
            start -= start % snap
        cut_before_zero = i < n - 1 and recs[b].trailing_zero and draw(st.integers(0, 3)) > 0
        if cut_before_zero and (start or 0) + 1 > span - 1:
            start = None  # no room for an end before the trailing zero after this start
        if cut_before_zero:
            end = draw(st.integers((start or 0) + 1, span - 1))
        elif draw(st.booleans()):
            end = draw(st.integers((start or 0) + 1, span + SEC))
        open_id = recs[a].open_id if draw(st.booleans()) else None
        out.append(SSpec(a, b, open_id, start, end, empty_range=draw(st.booleans())))
    return out


SMALL = "small"


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), cuts=st.lists(st.integers(0, 1000), max_size=5))
def test_generated_s_lists(http: httpx.Client, library: Library, data: st.DataObject,
                           cuts: list[int]) -> None:
    specs = data.draw(s_lists(library.recordings[SMALL]), label="specs")
    expected = expected_view(library.recordings[SMALL], specs)
    event(f"refused ({expected.error})" if expected.error else "served")
    check_view(http, library, SMALL, specs, cuts)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generated_s_lists_as_media_segments(
    http: httpx.Client, library: Library, data: st.DataObject
) -> None:
    """view.m4s of the same s= lists: after its sample entry's init segment, every frame
    decodes at its media time in its recording (tfdt), with the headers MediaSource
    players place it by; more than one sample entry is refused."""
    recs = library.recordings[SMALL]
    specs = data.draw(s_lists(recs), label="specs")
    expected = expected_view(recs, specs)
    entries = {f.width for f in expected.frames}
    resp = http.get(library.view_path(SMALL, "m4s"), params=params(specs))
    if expected.error is not None or len(entries) > 1:
        event("refused")
        assert resp.status_code == (expected.error or 400), resp.text
        assert resp.text.count("\n") == 1
        return
    event("served")
    assert resp.status_code == 200, resp.text
    assert expected.first is not None
    rec, start, lead = expected.first
    assert resp.headers["X-Prev-Media-Duration"] == str(rec.prev_media_duration_90k)
    assert resp.headers["X-Runs"] == str(rec.prev_runs + 1)
    assert resp.headers.get("X-Leading-Media-Duration") == (
        str(start - lead) if start > lead else None
    )
    init = http.get(f"/api/init/{rec.entry_id}.mp4")
    assert init.status_code == 200
    assert decoded_frames(init.content + resp.content, ignore_editlist=True) == [
        (lead + f.track_time, f.number, f.width) for f in expected.frames
    ]
    etag = resp.headers["ETag"]
    r = http.get(library.view_path(SMALL, "m4s"), params=params(specs),
                 headers={"If-None-Match": etag})
    assert r.status_code == 304


def test_prev_media_duration_is_stream_wide(http: httpx.Client, library: Library) -> None:
    """X-Prev-Media-Duration is the media duration of all the stream's recordings before
    the first requested one, whatever their run (Moonfire's API), and X-Runs the runs up
    to and including its own."""
    recs = library.recordings[SMALL]
    for i, rec in enumerate(recs):
        r = http.get(library.view_path(SMALL, "m4s"), params={"s": rec.recording_id})
        assert r.status_code == 200, r.text
        assert int(r.headers["X-Prev-Media-Duration"]) == sum(
            x.media_duration_90k for x in recs[:i])
        assert int(r.headers["X-Runs"]) == sum(x.run_offset == 0 for x in recs[: i + 1])


@pytest.mark.parametrize(
    "specs",
    [
        # across three runs: each run's last recording cut before its trailing zero; the
        # second run changes the sample entry (640x360, then 320x240)
        ["1-2.45000-1700000", "3-4.91000-", "5.-180000"],
        # repeated, starting mid-GOP
        ["0.45000-300000", "0.45000-300000"],
        # wall times scaled to media time (recording 6), across frames of 3300 ticks
        ["6.400000-700001", "6.700001-"],
        ["5-6.500000-1500000"],
        # a run's trailing zero can only end the file
        ["2", "3"],
        ["0-6"],
        # the open id must match
        ["0@1"],
        # the sample entry changes three times (640x360 and 320x240 by turns), starting
        # mid-GOP and ending before the trailing zero
        ["7-11.100000-1000000"],
        # out of the stream's range
        ["11-12"],
    ],
)
def test_chosen_s_lists(http: httpx.Client, library: Library, specs: list[str]) -> None:
    parsed = [parse(s) for s in specs]
    assert [str(p) for p in parsed] == specs
    check_view(http, library, SMALL, parsed, cuts=[250, 500, 750])


def parse(text: str) -> SSpec:
    m = re.fullmatch(r"(\d+)(?:-(\d+))?(?:@(\d+))?(?:\.(\d*)-(\d*))?", text)
    assert m is not None
    start = int(m[1])
    return SSpec(start, int(m[2]) if m[2] else start, int(m[3]) if m[3] else None,
                 int(m[4]) if m[4] else None, int(m[5]) if m[5] else None,
                 empty_range=m[4] == "" and m[5] == "")


@pytest.mark.parametrize(
    ("s", "status", "reason"),
    [
        ("", 400, "bad s="),
        ("1-0", 400, "end id before start id"),
        ("0.90000-90000", 400, "empty or reversed"),
        ("٣", 400, "bad s="),  # a digit, but not an ASCII one
        ("12", 404, "recording 12"),
        ("0@1", 404, "written by open"),
        ("4294967296", 400, "out of range"),
        ("0.99999999999999-", 400, "selects no video"),
    ],
)
def test_bad_s_values_get_a_one_line_reason(
    http: httpx.Client, library: Library, s: str, status: int, reason: str
) -> None:
    r = http.get(library.view_path(SMALL), params={"s": s})
    assert r.status_code == status
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert reason in r.text and r.text.count("\n") == 1, r.text


def test_a_client_that_goes_away_stops_the_reads(
    http: httpx.Client, library: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client reading the first MiB of a 44 MiB file and closing the connection: the
    server stops reading sample files (and closes its reader) long before the end."""
    reads: list[int] = []
    closed = threading.Event()
    pread, close = SampleReader._pread, SampleReader.close
    reading = threading.local()  # reads close the previous file: not the end

    def counting_pread(self: SampleReader, cid: int, offset: int, length: int) -> bytes:
        reads.append(length)
        reading.now = True
        try:
            return pread(self, cid, offset, length)
        finally:
            reading.now = False

    def signalling_close(self: SampleReader) -> None:
        close(self)
        if not getattr(reading, "now", False):
            closed.set()  # the body's end

    monkeypatch.setattr(SampleReader, "_pread", counting_pread)
    monkeypatch.setattr(SampleReader, "close", signalling_close)
    specs = ["0-2"] * 5  # the first run without its trailing zero, five times
    with http.stream("GET", library.view_path("big"), params=params(specs)) as resp:
        size = int(resp.headers["Content-Length"])
        assert size > 40 << 20
        received = 0
        for chunk in resp.iter_raw():
            received += len(chunk)
            if received >= 1 << 20:
                break
    # (closing a streamed response before its end closes the connection)
    assert closed.wait(10), "the body did not end"
    # what the socket buffers took, and a chunk or two (measured: 2 MiB of 44)
    assert sum(reads) < size // 4, (sum(reads), size)


def test_head_reads_no_sample_file(
    http: httpx.Client, library: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[int] = []
    pread = SampleReader._pread

    def counting_pread(self: SampleReader, cid: int, offset: int, length: int) -> bytes:
        reads.append(length)
        return pread(self, cid, offset, length)

    monkeypatch.setattr(SampleReader, "_pread", counting_pread)
    specs = ["0-2"] * 5
    head = http.head(library.view_path("big"), params=params(specs))
    get = http.get(library.view_path("big"), params=params(specs), headers={"Range": "bytes=0-0"})
    size = int(get.headers["Content-Range"].split("/")[1])
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["Content-Length"] == str(size)
    for name in ("ETag", "Last-Modified", "Content-Type", "Accept-Ranges", "Cache-Control"):
        assert head.headers[name] == get.headers[name]
    # (one more request on the same connection: the HEAD's handling is over)
    assert http.get(library.view_path("big"), params={"s": "3"},
                    headers={"Range": "bytes=0-0"}).status_code == 206
    assert reads == []  # the header holds byte 0; a HEAD reads nothing
