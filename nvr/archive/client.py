"""The object-store seam: ``ObjectStore`` (what the archive needs of S3) and ``S3Store``.

What belongs here: the handful of object operations the archive uses, blocking, each
mapping the library's errors to ``NvrError`` kinds; the S3 implementation over boto3.
Not: what objects are called (``layout``), retries and state (``uploader``), trio.
Callers run every method through ``nvr.base.blocking.run_blocking``.

Why boto3 (in worker threads): it is AWS's own SDK, released several times a week, with
the widest coverage of S3-compatible quirks (path-style addressing, regions, signature
versions, ``Content-MD5`` and ``x-amz-checksum-sha256`` on PUT); its clients are
thread-safe, so blocking calls through the thread seam need no event-loop bridge, and
trio stays the only async framework in the process. aiobotocore is tied to asyncio
(aiohttp), which trio cannot host without a second loop; obstore (Rust's object_store)
is fast but its async API is asyncio-only too, and its sync API gives no way to send a
content checksum the server verifies on PUT. Throughput is bounded by the network and the
server, not the client (see tests/bench/bench_archive.py for the figures).

Every PUT carries ``x-amz-checksum-sha256`` (and ``Content-MD5`` unless
``probe_checksums`` found that the server verifies the SHA-256): the server refuses a
body that does not match (``DataLoss`` here), so an object that exists has the bytes we
meant. Those headers are signed, so the body is not hashed again for the signature
(``UNSIGNED-PAYLOAD``, also over plain HTTP). PUT, the one operation done per object, is
signed by botocore's SigV4 signer and sent on a urllib3 connection pool of our own (the
library botocore sends with), without boto3's per-request pipeline: that halved the CPU
per PUT (tests/bench/bench_archive.py). No retries below us (botocore's
``max_attempts=1``, urllib3's ``retries=False``): the uploader retries forever with its
own backoff and logging, like the syncer.

Error kinds: connection failures, timeouts and 5xx are ``Unavailable``; a missing bucket
is ``FailedPrecondition``; a missing object ``NotFound``; wrong credentials or a refused
request ``PermissionDenied``; a checksum the server disagrees with ``DataLoss``; any other
4xx ``FailedPrecondition``. Messages name the operation, the bucket and key and the
server's error code, never credentials.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Protocol
from urllib.parse import quote

from nvr.base import errors
from nvr.db.archives import ArchiveConfig

#: the key ``probe_checksums`` writes (and deletes) under an archive's prefix
PROBE_KEY = ".nvr-checksum-probe"


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    #: the SHA-256 the server stored for the object (None: it keeps none)
    sha256: bytes | None = None


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Where an archive lives and how to sign requests to it."""

    endpoint: str
    bucket: str
    access_key: str
    secret_key: str = field(repr=False)
    region: str = "us-east-1"
    connect_timeout_sec: float = 10.0
    read_timeout_sec: float = 60.0
    #: connections kept open (the uploader's concurrent uploads)
    max_connections: int = 4


class ObjectStore(Protocol):
    """The operations the archive needs; blocking; errors are ``NvrError`` kinds."""

    def put(self, key: str, body: IO[bytes], size: int, *, md5: bytes | None,
            sha256: bytes) -> None:
        """Stores ``size`` bytes read from ``body`` (seekable, at its start) as ``key``;
        the server verifies the digests (``md5`` None: the SHA-256 only, for a server
        ``probe_checksums`` found to verify it)."""
        ...

    def head(self, key: str) -> ObjectInfo | None:
        """The object's size (and stored SHA-256), or None if there is no such object."""
        ...

    def get_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the object."""
        ...

    def list(self, prefix: str, start_after: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix`` (and sorts after
        ``start_after``), in key order."""
        ...

    def list_dirs(self, prefix: str) -> Sequence[str]:
        """The "directories" right under ``prefix``: each distinct ``prefix + name + "/"``
        of the keys below it, in key order (a LIST with delimiter ``/``)."""
        ...

    def delete(self, key: str) -> None:
        """Deletes the object (no error if there is none)."""
        ...


_UNAVAILABLE_CODES = {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout"}
_DENIED_CODES = {
    "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden",
    "InvalidToken", "ExpiredToken",
}
_DIGEST_CODES = {
    "BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch", "XAmzContentChecksumMismatch",
    "InvalidChecksum",
}


def _map_code(code: str, status: int, message: str | None, what: str) -> errors.NvrError:
    """An S3 error response (its ``Code``, HTTP status and ``Message``) as an ``NvrError``."""
    msg = f"{what}: {code or status} ({message or 'no message'})"
    if code == "NoSuchBucket":
        return errors.FailedPrecondition(f"{what}: bucket does not exist (NoSuchBucket)")
    if code in ("NoSuchKey", "NotFound", "404") or status == 404:
        return errors.NotFound(msg)
    if code in _DENIED_CODES or status in (401, 403):
        return errors.PermissionDenied(msg)
    if code in _DIGEST_CODES:
        return errors.DataLoss(msg)
    if code in _UNAVAILABLE_CODES or status >= 500 or status == 0:
        return errors.Unavailable(msg)
    return errors.FailedPrecondition(msg)


def _map_error(e: Exception, what: str) -> errors.NvrError:
    # imported here so that importing this module (e.g. for the protocol) stays cheap
    import urllib3
    from botocore import exceptions as bx

    if isinstance(e, bx.ClientError):
        err = e.response.get("Error", {})
        status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return _map_code(str(err.get("Code", "")), status, err.get("Message"), what)
    if isinstance(e, bx.BotoCoreError | OSError | urllib3.exceptions.HTTPError):
        # connection refused/reset, timeouts, DNS: the server is not there (for now)
        return errors.Unavailable(f"{what}: {type(e).__name__}: {e}")
    return errors.Internal(f"{what}: {type(e).__name__}: {e}")


def _xml_field(body: bytes, name: str) -> str | None:
    """``<name>...</name>`` of an S3 error document (no XML parser for two fields)."""
    m = re.search(rb"<" + name.encode() + rb">([^<]{0,500})</", body)
    return None if m is None else m.group(1).decode("utf-8", "replace")


class S3Store:
    """``ObjectStore`` over boto3's S3 client (thread-safe: one per archive)."""

    def __init__(self, cfg: StoreConfig) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = cfg.bucket
        self._client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=cfg.endpoint,
            aws_access_key_id=cfg.access_key,
            aws_secret_access_key=cfg.secret_key,
            region_name=cfg.region,
            config=Config(
                # the body is bound to the signature by the signed checksum headers;
                # hashing it a third time for the signature would cost ~2.5 CPU s/GB
                s3={"addressing_style": "path", "payload_signing_enabled": False},
                retries={"max_attempts": 1, "mode": "standard"},
                connect_timeout=cfg.connect_timeout_sec,
                read_timeout=cfg.read_timeout_sec,
                # our own checksums on PUT; none of botocore's streaming trailers
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                max_pool_connections=cfg.max_connections,
            ),
        )
        import urllib3
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        from botocore.httpsession import get_cert_path

        self._endpoint = cfg.endpoint.rstrip("/")
        self._aws_request = AWSRequest
        self._signer = S3SigV4Auth(Credentials(cfg.access_key, cfg.secret_key), "s3",
                                   cfg.region)
        # no "Expect: 100-continue": it costs a round trip per object, and a refusal
        # (credentials, bucket) after a body of a few MB costs little; bodies bigger than
        # ``IN_MEMORY`` are streamed from the file in 1 MiB writes
        self._pool: Any = urllib3.connection_from_url(
            self._endpoint, maxsize=cfg.max_connections, block=False,
            timeout=urllib3.Timeout(connect=cfg.connect_timeout_sec,
                                    read=cfg.read_timeout_sec),
            blocksize=1 << 20,
            **({"ca_certs": get_cert_path(True)} if self._endpoint.startswith("https:")
               else {}),
        )

    def _what(self, op: str, key: str) -> str:
        return f"{op} s3://{self.bucket}/{key}"

    def put(self, key: str, body: IO[bytes], size: int, *, md5: bytes | None,
            sha256: bytes) -> None:
        # Signed by botocore's own SigV4 signer, sent on a urllib3 pool: put_object's
        # request pipeline (endpoint rules, event hooks, validation, response parsing)
        # cost more CPU per object than everything else an upload does but the kernel's
        # copies (docs/design.md, "Archive tier"). The other operations are rare: boto3.
        path = f"/{quote(self.bucket)}/{quote(key, safe='/~')}"
        headers = {
            "Content-Length": str(size),
            "x-amz-checksum-sha256": base64.b64encode(sha256).decode(),
            "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
        }
        if md5 is not None:
            headers["Content-MD5"] = base64.b64encode(md5).decode()
        req = self._aws_request("PUT", self._endpoint + path, data=b"", headers=headers)
        req.context["payload_signing_enabled"] = False
        self._signer.add_auth(req)
        data: Any = body.getvalue() if isinstance(body, io.BytesIO) else body
        what = self._what("PUT", key)
        try:
            r = self._pool.urlopen("PUT", path, body=data, headers=dict(req.headers.items()),
                                   retries=False, redirect=False, preload_content=True)
        except Exception as e:
            raise _map_error(e, what) from e
        if r.status != 200:
            raise _map_code(_xml_field(r.data, "Code") or "", r.status,
                            _xml_field(r.data, "Message"), what)

    def head(self, key: str) -> ObjectInfo | None:
        try:
            r = self._client.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        except Exception as e:
            mapped = _map_error(e, self._what("HEAD", key))
            if isinstance(mapped, errors.NotFound):
                return None
            raise mapped from e
        sha = r.get("ChecksumSHA256")
        return ObjectInfo(key, int(r["ContentLength"]), base64.b64decode(sha) if sha else None)

    def get_range(self, key: str, start: int, end: int) -> bytes:
        # As PUT: signed by botocore's signer and sent on our urllib3 pool (playback
        # reads an archived hour in ~450 of these), the body read straight into one
        # buffer
        if end <= start:
            return b""
        path = f"/{quote(self.bucket)}/{quote(key, safe='/~')}"
        headers = {"Range": f"bytes={start}-{end - 1}",
                   "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}
        req = self._aws_request("GET", self._endpoint + path, headers=headers)
        req.context["payload_signing_enabled"] = False
        self._signer.add_auth(req)
        what = self._what("GET", key)
        try:
            r = self._pool.urlopen("GET", path, headers=dict(req.headers.items()),
                                   retries=False, redirect=False, preload_content=False)
            try:
                if r.status not in (200, 206):
                    body = r.read(64 << 10)
                    raise _map_code(_xml_field(body, "Code") or "", r.status,
                                    _xml_field(body, "Message"), what)
                buf = bytearray(end - start)
                view, got = memoryview(buf), 0
                while got < len(buf):
                    n = r.readinto(view[got:])
                    if not n:
                        break
                    got += n
                extra = r.read(1) if r.status == 200 and got == len(buf) else b""
            finally:
                r.release_conn()
        except errors.NvrError:
            raise
        except Exception as e:
            raise _map_error(e, what) from e
        if got != end - start or extra:
            raise errors.DataLoss(f"{what}: asked for {end - start} bytes, got "
                                  f"{got if not extra else 'more'}")
        return bytes(buf)

    def _list_pages(self, prefix: str, **extra: str) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            kw: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, **extra}
            if token:
                kw["ContinuationToken"] = token
            try:
                r: dict[str, Any] = self._client.list_objects_v2(**kw)
            except Exception as e:
                raise _map_error(e, self._what("LIST", prefix)) from e
            yield r
            if not r.get("IsTruncated"):
                return
            token = r.get("NextContinuationToken")

    def list(self, prefix: str, start_after: str = "") -> Iterator[ObjectInfo]:
        extra = {"StartAfter": start_after} if start_after else {}
        for r in self._list_pages(prefix, **extra):
            for o in r.get("Contents", []):
                yield ObjectInfo(o["Key"], int(o["Size"]))

    def list_dirs(self, prefix: str) -> Sequence[str]:
        return [p["Prefix"] for r in self._list_pages(prefix, Delimiter="/")
                for p in r.get("CommonPrefixes", [])]

    def delete(self, key: str) -> None:
        try:
            self._client.delete_object(Bucket=self.bucket, Key=key)
        except Exception as e:
            raise _map_error(e, self._what("DELETE", key)) from e


def probe_checksums(store: ObjectStore, prefix: str) -> bool:
    """Whether the server verifies ``x-amz-checksum-sha256`` on PUT (blocking): PUTs a
    small object with a wrong SHA-256 and no MD5. A refusal (``DataLoss``) says it does:
    then an upload can send the SHA-256 its writer recorded, without hashing the bytes
    again here, and the server checks them against it end to end. An object accepted
    with a wrong checksum is deleted and the answer is no (send MD5 too). Other errors
    propagate (the server is down: ask again later)."""
    body = b"nvr checksum probe"
    wrong = hashlib.sha256(b"not the body").digest()
    try:
        store.put(prefix + PROBE_KEY, io.BytesIO(body), len(body), md5=None, sha256=wrong)
    except errors.DataLoss:
        return True
    store.delete(prefix + PROBE_KEY)
    return False


#: makes the store of an archive's configuration (``open_s3``; tests pass an in-process
#: one), with at most so many connections
OpenStore = Callable[[ArchiveConfig, int], ObjectStore]


def open_s3(c: ArchiveConfig, max_connections: int = 4) -> ObjectStore:
    """The S3 store of an archive (blocking: boto3 builds its client; nothing connects)."""
    return S3Store(StoreConfig(c.endpoint, c.bucket, c.access_key, c.secret_key, c.region,
                               max_connections=max_connections))
