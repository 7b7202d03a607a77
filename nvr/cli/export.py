"""``nvr verify-export FILE.zip [--public-key KEY]``: checks an export
(``nvr.offline.verify_export``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nvr.cli.common import Subparsers


def cmd_verify_export(args: argparse.Namespace) -> int:
    from nvr.db import signing
    from nvr.offline.verify_export import verify_export

    key = None
    if args.public_key is not None:
        text = args.public_key
        if Path(text).is_file():
            text = Path(text).read_text()  # a file holding the key
        key = signing.parse_public_key(text)
    report = verify_export(Path(args.file), key)
    for line in report.problems:
        print(line)
    for line in report.notes:
        print(f"note: {line}", file=sys.stderr)
    if report.ok:
        print(f"{args.file}: ok, {report.files} files as signed by {report.signed_by}")
        return 0
    print(f"{args.file}: {len(report.problems)} problems", file=sys.stderr)
    return 1


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser("verify-export", help="check an export's files and signature")
    p.add_argument("file", metavar="FILE.zip")
    p.add_argument(
        "--public-key", default=None,
        help="the signer's public key (ed25519:HEX, as GET /api/ shows it), or a file holding it",
    )
    p.set_defaults(func=cmd_verify_export)
