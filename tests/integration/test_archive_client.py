"""``S3Store`` against a real SeaweedFS: every operation, and each failure mapped to the
``NvrError`` kind the uploader's state reports (checksums the server refuses, wrong
credentials, a missing bucket, a server that is gone)."""

from __future__ import annotations

import dataclasses
import hashlib
import io

import pytest

from nvr.archive.client import S3Store
from nvr.base import errors
from tests.support.seaweed import SeaweedServer, ServerFactory


def _put(store: S3Store, key: str, data: bytes, *, md5: bytes | None = None,
         sha256: bytes | None = None) -> None:
    store.put(key, io.BytesIO(data), len(data),
              md5=md5 or hashlib.md5(data).digest(),
              sha256=sha256 or hashlib.sha256(data).digest())


def test_put_head_get_list_delete(seaweed: SeaweedServer) -> None:
    store = seaweed.store(seaweed.bucket())
    data = bytes(range(256)) * 1000
    _put(store, "a/1", data)
    _put(store, "a/2", b"x")
    _put(store, "b/1", b"y")
    info = store.head("a/1")
    assert info is not None and info.size == len(data)
    assert info.sha256 in (None, hashlib.sha256(data).digest())
    assert store.head("a/missing") is None
    assert store.get_range("a/1", 1000, 1300) == data[1000:1300]
    assert [(o.key, o.size) for o in store.list("a/")] == [("a/1", len(data)), ("a/2", 1)]
    assert [o.key for o in store.list("a/", "a/1")] == ["a/2"]  # StartAfter (the follower)
    assert [o.key for o in store.list("", "a/2")] == ["b/1"]
    assert list(store.list_dirs("")) == ["a/", "b/"]
    assert list(store.list_dirs("a/")) == []
    assert store.get_range("a/1", 0, len(data)) == data  # one GET, read into one buffer
    store.delete("a/1")
    store.delete("a/1")  # twice: no error
    assert store.head("a/1") is None
    with pytest.raises(errors.NotFound):
        store.get_range("a/1", 0, 10)


@pytest.mark.parametrize("bad", ["md5", "sha256"])
def test_a_body_that_does_not_match_its_checksum_is_refused(
    seaweed: SeaweedServer, bad: str
) -> None:
    store = seaweed.store(seaweed.bucket())
    wrong = {bad: (hashlib.md5 if bad == "md5" else hashlib.sha256)(b"other").digest()}
    with pytest.raises(errors.DataLoss):
        _put(store, "k", b"the bytes", **wrong)
    assert store.head("k") is None


def test_wrong_credentials_are_permission_denied_and_never_echoed(
    seaweed: SeaweedServer,
) -> None:
    bucket = seaweed.bucket()
    cfg = dataclasses.replace(seaweed.config(bucket), secret_key="not-the-secret-9876")
    with pytest.raises(errors.PermissionDenied) as e:
        _put(S3Store(cfg), "k", b"1")
    assert "not-the-secret-9876" not in str(e.value)
    assert "not-the-secret-9876" not in repr(cfg)


def test_a_missing_bucket_is_a_failed_precondition(seaweed: SeaweedServer) -> None:
    with pytest.raises(errors.FailedPrecondition, match="bucket does not exist"):
        _put(seaweed.store("no-such-bucket-here"), "k", b"1")


def test_a_server_that_is_gone_is_unavailable_and_objects_survive_a_restart(
    seaweed_factory: ServerFactory,
) -> None:
    server = seaweed_factory()
    store = server.store(server.bucket())
    _put(store, "k", b"kept")
    server.kill()
    with pytest.raises(errors.Unavailable):
        _put(store, "k2", b"1")
    server.start()
    assert store.get_range("k", 0, 4) == b"kept"


def test_seaweedfs_verifies_the_sha256_so_the_probe_says_so_and_leaves_nothing(
    seaweed: SeaweedServer,
) -> None:
    from nvr.archive.client import probe_checksums

    store = seaweed.store(seaweed.bucket())
    assert probe_checksums(store, "p/") is True
    assert list(store.list("p/")) == []
    # without an MD5, a right SHA-256 alone is accepted
    store.put("p/k", io.BytesIO(b"abc"), 3, md5=None, sha256=hashlib.sha256(b"abc").digest())
    assert store.get_range("p/k", 0, 3) == b"abc"
    # keys are quoted and signed as S3 wants (a prefix may hold any character)
    odd = "p/a b+c~é=%/x.sample"
    store.put(odd, io.BytesIO(b"abc"), 3, md5=None, sha256=hashlib.sha256(b"abc").digest())
    assert store.get_range(odd, 0, 3) == b"abc"
    assert odd in {o.key for o in store.list("p/")}
