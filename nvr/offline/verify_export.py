"""``nvr verify-export``: checks an export's files against its signed manifest.

An export (``nvr.web.export``) is a zip of ``.mp4`` files, ``manifest.json`` (each file's
size and SHA-256) and ``manifest.json.sig`` (Ed25519 over the manifest's exact bytes).
``verify_export`` reports, one line each and naming the member: a member whose bytes
fail the zip's CRC-32 or the manifest's SHA-256 or size, a file the manifest lists but
the zip lacks, a member the manifest does not list, a manifest that does not parse, and
a signature that does not match (or a manifest signed by another key than the one
given). Without a public key the signature is checked against the key the manifest
names, which proves the files are as signed but not by whom: the report says so.
Members are read in chunks; nothing is held whole but the manifest.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from nvr.base import errors
from nvr.db import signing

MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
FORMAT = "nvr-export/1"
_CHUNK = 1 << 20


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: int = 0
    signed_by: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_export(path: Path, public_key: Ed25519PublicKey | None = None) -> Report:
    report = Report()
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise errors.NotFound(f"no file {path}") from None
    except (zipfile.BadZipFile, OSError) as e:
        report.problems.append(f"{path}: not a readable zip ({e})")
        return report
    with zf:
        names = zf.namelist()
        manifest_bytes = _read_small(zf, MANIFEST, report)
        sig = _read_small(zf, SIGNATURE, report)
        if manifest_bytes is None:
            return report
        manifest = _parse(manifest_bytes, report)
        if manifest is None:
            return report
        _check_signature(manifest, manifest_bytes, sig, public_key, report)
        listed: dict[str, dict[str, Any]] = {}
        for f in manifest["files"]:
            listed[f["name"]] = f
        for name in names:
            if name not in listed and name not in (MANIFEST, SIGNATURE):
                report.problems.append(f"{name}: in the zip but not listed in the manifest")
        for name, f in listed.items():
            if name not in names:
                report.problems.append(f"{name}: listed in the manifest but missing")
                continue
            _check_member(zf, name, f, report)
            report.files += 1
    return report


def _read_small(zf: zipfile.ZipFile, name: str, report: Report) -> bytes | None:
    try:
        return zf.read(name)
    except KeyError:
        report.problems.append(f"{name}: missing")
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        report.problems.append(f"{name}: damaged ({e})")
    return None


def _parse(data: bytes, report: Report) -> dict[str, Any] | None:
    try:
        m = json.loads(data)
        if not isinstance(m, dict) or m.get("format") != FORMAT:
            raise ValueError(f"not an {FORMAT} manifest")
        files = m["files"]
        if not isinstance(files, list) or not all(
            isinstance(f, dict) and isinstance(f.get("name"), str)
            and isinstance(f.get("sha256"), str) and isinstance(f.get("bytes"), int)
            for f in files
        ):
            raise ValueError("its file list is malformed")
    except (ValueError, KeyError) as e:
        report.problems.append(f"{MANIFEST}: damaged ({e})")
        return None
    return m


def _check_signature(manifest: dict[str, Any], data: bytes, sig: bytes | None,
                     given: Ed25519PublicKey | None, report: Report) -> None:
    named = manifest.get("publicKey")
    try:
        carried = signing.parse_public_key(named) if isinstance(named, str) else None
    except errors.InvalidArgument:
        carried = None
    key = given or carried
    if key is None:
        report.problems.append(f"{MANIFEST}: names no valid public key (pass --public-key)")
        return
    report.signed_by = signing.public_key_text(key)
    if given is not None and named != report.signed_by:
        report.problems.append(
            f"{MANIFEST}: names public key {named}, not the one given ({report.signed_by})")
    if given is None:
        report.notes.append(
            "the signature was checked against the key the export names: pass --public-key "
            "(GET /api/ shows nvrExportPublicKey) to know who signed it")
    if sig is None:
        return  # reported missing or damaged
    if not signing.verify(key, data, sig.decode("ascii", "replace")):
        report.problems.append(
            f"{MANIFEST}: the signature in {SIGNATURE} does not match it (the manifest or "
            "the signature was changed)")


def _check_member(zf: zipfile.ZipFile, name: str, f: dict[str, Any], report: Report) -> None:
    h = hashlib.sha256()
    size = 0
    try:
        with zf.open(name) as member:
            while chunk := member.read(_CHUNK):
                h.update(chunk)
                size += len(chunk)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        report.problems.append(f"{name}: damaged ({e})")
        return
    if size != f["bytes"]:
        report.problems.append(f"{name}: {size} bytes, the manifest says {f['bytes']}")
    elif h.hexdigest() != f["sha256"]:
        report.problems.append(f"{name}: its SHA-256 differs from the manifest's")
