"""300 concurrent failed logins from one address against ``nvr run`` (real sockets, real
argon2id with argon2-cffi's defaults: 64 MiB per hash): 20 are checked (the address's
limit), the others get 429 at once, and the daemon's peak memory grows by at most the
hashes it runs at a time (``LoginLimits.concurrent_hashes``), not by one hash per request.
Before issue 12 the same flood had 110 hashes checked and the daemon grew by 2 GB."""

from __future__ import annotations

import io
import re
from pathlib import Path

import httpx
import pytest
import trio

from nvr.base.clock import RealClocks
from nvr.cli import main
from nvr.db.database import Database
from nvr.web.login_limit import LoginLimits
from tests.support.process import NvrProcess

MIB = 1 << 20
ARGON2_MEMORY = 64 * MIB  # argon2-cffi's default memory_cost (RFC 9106, low memory)


def peak_rss(pid: int) -> int:
    """The process's peak resident set size (``VmHWM``), in bytes."""
    status = Path(f"/proc/{pid}/status").read_text()
    m = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    assert m is not None
    return int(m[1]) * 1024


async def test_a_login_flood_is_counted_before_hashing_and_memory_stays_flat(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db_dir = tmp_path / "db"
    Database.create(db_dir, RealClocks().realtime())
    monkeypatch.setattr("sys.stdin", io.StringIO("right\n"))
    assert main(["--db-dir", str(db_dir), "config", "user", "add", "ann",
                 "--password-stdin", "--perms", "viewVideo"]) == 0
    config = tmp_path / "nvr.toml"
    config.write_text('[[binds]]\naddress = "127.0.0.1:0"\n')
    nvr = NvrProcess(db_dir, config, tmp_path / "nvr.log")
    try:
        base = nvr.wait_serving()
        limits = httpx.Limits(max_connections=32)  # a browser's worth of sockets, and more
        async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as c:
            # one login first, so that start-up and the first hash are in the baseline
            ok = await c.post("/api/login", json={"username": "ann", "password": "right"})
            assert ok.status_code == 204
            before = peak_rss(nvr.process.pid)
            statuses: list[int] = []
            busy = 0

            async def guess(i: int) -> None:
                nonlocal busy
                resp = await c.post("/api/login", json={"username": f"user{i}",
                                                        "password": f"guess{i}"})
                statuses.append(resp.status_code)
                busy += resp.status_code == 429 and "busy" in resp.text

            started = trio.current_time()
            async with trio.open_nursery() as nursery:
                for i in range(300):
                    nursery.start_soon(guess, i)
            took = trio.current_time() - started
            after = peak_rss(nvr.process.pid)
        # the address's 20 attempts are counted before hashing; each is checked (401) or,
        # on a machine so loaded that its turn for a hash slot did not come within
        # hash_wait_sec, refused as busy (429); every other attempt is refused at once
        checked = statuses.count(401)
        assert checked + busy == LoginLimits().per_address == 20
        assert statuses.count(429) == 280 + busy
        grown = after - before
        print(f"peak RSS {before / MIB:.0f} MiB before, {after / MIB:.0f} MiB after "
              f"(+{grown / MIB:.0f} MiB) for 300 concurrent failed logins in {took:.1f} s")
        assert grown <= LoginLimits().concurrent_hashes * ARGON2_MEMORY + 32 * MIB
        assert nvr.log.count("failed login as") == checked
    finally:
        nvr.kill()
