"""Sample files are read through ``nvr.storage``'s reader (``SampleFileReader``), by the
web's media routes and by ``nvr check``, so fault injection reaches every read."""

from __future__ import annotations

import errno
import logging
import re
from pathlib import Path

import pytest

from nvr.base import errors
from nvr.testing.env import create_env, open_env
from tests.support.determinism import T0
from tests.support.web import Recorded, client


def test_local_reader_reads_sizes_and_injected_faults(tmp_path: Path) -> None:
    create_env(tmp_path)
    env = open_env(tmp_path, now=lambda: T0)
    try:
        sdir, cid = env.sdir, env.stream_ids[0] << 32
        data = bytes(range(256)) * 40
        fd = sdir.create_file(cid)
        sdir.write_all(fd, [data])
        sdir.close_file(fd)
        assert sdir.file_size(cid) == len(data)
        assert sdir.file_size(cid + 1) is None
        with pytest.raises(errors.NotFound):
            sdir.open_for_reading(cid + 1)

        f = sdir.open_for_reading(cid)
        assert f.pread(1000, 24) == data[1000:1024]
        assert f.pread(len(data) - 4, 100) == data[-4:]  # short only at the end
        assert f.pread(len(data), 100) == b""
        sdir.fail("read", errno.EIO, times=1)
        with pytest.raises(errors.Internal, match=r"^read in .* \(injected\): Input/output"):
            f.pread(0, 10)
        assert f.pread(0, 10) == data[:10]  # the fault was for one read
        f.close()
        sdir.fail("open_for_reading", errno.EACCES, times=1)
        with pytest.raises(errors.PermissionDenied):
            sdir.open_for_reading(cid)
        assert (sdir.calls["open_for_reading"], sdir.calls["read"]) == (3, 5)
    finally:
        env.close()


@pytest.mark.usefixtures("inline_web_threads")
async def test_view_reads_through_the_directorys_reader(
    recorded: Recorded, autojump_clock: object, caplog: pytest.LogCaptureFixture
) -> None:
    sdir = recorded.env.sdir
    c = client(recorded)
    url = f"/api/cameras/{recorded.camera_uuid}/main/view.mp4"
    r = await c.get(url, query_string={"s": "0"}, headers={"Range": "bytes=-1000"})
    assert r.status_code == 206 and len(await r.get_data()) == 1000
    assert (sdir.calls["open_for_reading"], sdir.calls["read"]) == (1, 1)

    sdir.fail("read", errno.EIO)
    caplog.set_level(logging.ERROR, "nvr.web.view")
    r = await c.get(url, query_string={"s": "0"}, headers={"Range": "bytes=-1000"})
    # the headers were out: the body ends short (the connection closes), logged once
    assert r.status_code == 206 and await r.get_data() == b""
    (line,) = [x for x in caplog.records if x.name == "nvr.web.view"]
    assert line.levelno == logging.ERROR
    assert re.search(r"response ended .*: read in .* \(injected\)", line.getMessage())
    assert sdir.calls["read"] == 2
