"""The export signing key: an Ed25519 key kept beside the database, and signing with it.

Exports (``nvr.web.export``) carry a manifest signed with this key; ``nvr verify-export``
checks the signature against the public key (``GET /api/`` shows it as
``nvrExportPublicKey``). The key is the database directory's, like the database itself:

- made by ``nvr init`` (``Database.create``), and by ``nvr upgrade`` and every
  read-write open when missing (databases made before exports existed get theirs then);
- the file ``export-signing-key`` in the database directory: the raw 32-byte private key
  in PKCS#8 PEM, created with ``O_EXCL`` and mode ``0600`` (only the owner reads it),
  written and fsynced (then the directory) before it is used, so a crash leaves either no
  key or a whole one (a torn file fails to load with a message naming it, and is never
  overwritten);
- the public key is written as ``ed25519:`` and 64 lowercase hex digits.

Not here: what is signed (the manifest: ``nvr.web.export``), checking an export
(``nvr.offline.verify_export``). Only this module and those import ``cryptography``.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from nvr.base import errors

KEY_FILE = "export-signing-key"
PUBLIC_PREFIX = "ed25519:"


def ensure_key(db_dir: Path) -> bool:
    """Creates the key in ``db_dir`` unless it exists; True when it was created."""
    path = db_dir / KEY_FILE
    if path.exists():
        return False
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with errors.mapped_os_errors(f"creating the export signing key {path}"):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            return False  # made meanwhile by someone else: theirs stands
        try:
            view = memoryview(pem)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        dfd = os.open(db_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    return True


def load_key(db_dir: Path) -> Ed25519PrivateKey:
    """The key of ``db_dir``; ``FailedPrecondition`` when it is missing or unreadable."""
    path = db_dir / KEY_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise errors.FailedPrecondition(
            f"no export signing key at {path}: run `nvr upgrade` (or start the daemon "
            "read-write once) to create it"
        ) from None
    except OSError as e:
        raise errors.from_os_error(e, f"reading the export signing key {path}") from e
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise errors.DataLoss(f"the export signing key {path} is damaged: {e}") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise errors.DataLoss(f"the export signing key {path} is not an Ed25519 key")
    return key


def public_key_text(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """``ed25519:`` and the raw public key in hex."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return PUBLIC_PREFIX + raw.hex()


def parse_public_key(text: str) -> Ed25519PublicKey:
    """The inverse of ``public_key_text`` (the prefix is optional); ``InvalidArgument``."""
    hex_part = text.strip().removeprefix(PUBLIC_PREFIX)
    try:
        raw = bytes.fromhex(hex_part)
        if len(raw) != 32:
            raise ValueError("not 32 bytes")
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise errors.InvalidArgument(
            f"not an Ed25519 public key (expected {PUBLIC_PREFIX} and 64 hex digits)"
        ) from None


_public_cache: dict[Path, str] = {}


def public_key_of(db_dir: Path) -> str | None:
    """``db_dir``'s public key as text (cached: a key never changes), None without one."""
    text = _public_cache.get(db_dir)
    if text is None:
        try:
            text = public_key_text(load_key(db_dir))
        except errors.NvrError:
            return None
        _public_cache[db_dir] = text
    return text


def sign(key: Ed25519PrivateKey, data: bytes) -> str:
    """The signature of ``data`` in hex."""
    return key.sign(data).hex()


def verify(public: Ed25519PublicKey, data: bytes, signature_hex: str) -> bool:
    try:
        public.verify(bytes.fromhex(signature_hex.strip()), data)
    except (InvalidSignature, ValueError):
        return False
    return True
