"""``MemoryStore``: an in-process ``ObjectStore`` with injectable faults, for unit tests on
``MockClock`` (the integration tests use a real SeaweedFS, ``tests/support/seaweed.py``).

It checks the digests sent with each PUT as a server does (``DataLoss`` on a mismatch)
and counts PUTs per key (``verifies_sha256`` False: a server that ignores the
SHA-256); ``faults`` is a list of errors raised by the next calls, one
each, before any of them does anything."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from typing import IO

from nvr.archive.client import ObjectInfo
from nvr.base import errors


class MemoryStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.puts: Counter[str] = Counter()
        self.faults: list[errors.NvrError] = []
        self.calls = 0
        #: like SeaweedFS (and AWS): the SHA-256 is checked; False: a server that ignores it
        self.verifies_sha256 = True
        #: (key, with an MD5) of every PUT, in order
        self.put_log: list[tuple[str, bool]] = []
        #: LIST requests, and keys they returned (what a pass of the follower costs)
        self.listed = 0
        self.listed_keys = 0

    def _fault(self) -> None:
        self.calls += 1
        if self.faults:
            raise self.faults.pop(0)

    def put(self, key: str, body: IO[bytes], size: int, *, md5: bytes | None,
            sha256: bytes) -> None:
        self._fault()
        data = body.read()
        if len(data) != size:
            raise errors.FailedPrecondition(f"PUT {key}: {len(data)} bytes, said {size}")
        if md5 is not None and hashlib.md5(data).digest() != md5:
            raise errors.DataLoss(f"PUT {key}: BadDigest")
        if self.verifies_sha256 and hashlib.sha256(data).digest() != sha256:
            raise errors.DataLoss(f"PUT {key}: XAmzContentChecksumMismatch")
        self.objects[key] = data
        self.puts[key] += 1
        self.put_log.append((key, md5 is not None))

    def head(self, key: str) -> ObjectInfo | None:
        self._fault()
        data = self.objects.get(key)
        return None if data is None else ObjectInfo(key, len(data), hashlib.sha256(data).digest())

    def get_range(self, key: str, start: int, end: int) -> bytes:
        self._fault()
        if key not in self.objects:
            raise errors.NotFound(f"GET {key}: NoSuchKey")
        return self.objects[key][start:end]

    def list(self, prefix: str, start_after: str = "") -> Iterator[ObjectInfo]:
        self._fault()
        self.listed += 1
        for k in sorted(self.objects):
            if k.startswith(prefix) and k > start_after:
                self.listed_keys += 1
                yield ObjectInfo(k, len(self.objects[k]))

    def list_dirs(self, prefix: str) -> list[str]:
        self._fault()
        self.listed += 1
        return sorted({prefix + k[len(prefix):].split("/", 1)[0] + "/" for k in self.objects
                       if k.startswith(prefix) and "/" in k[len(prefix):]})

    def delete(self, key: str) -> None:
        self._fault()
        self.objects.pop(key, None)
