"""The ``nvr`` command line: argument parsing and one-line error reporting.

Each subcommand is a small function taking the parsed arguments and returning an exit
status; the work itself lives in the layers below. Errors the user can act on
(``NvrError``) print one line to stderr and exit 1, or 2 when the input itself is wrong
(bad flags: argparse's usage line; bad values or config: ``InvalidArgument``); nothing
prints a traceback unless ``NVR_DEBUG`` is set.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from nvr.base import errors
from nvr.base.clock import RealClocks
from nvr.base.time90k import UNITS_PER_SEC, format_time, parse_time, zone
from nvr.base.units import format_size, parse_size
from nvr.config import DEFAULT_DB_DIR, BindConfig, Config, load_config, parse_address
from nvr.offline import admin

Command = Callable[[argparse.Namespace], int]


def _explicit_db_dir(args: argparse.Namespace) -> str | None:
    """``--db-dir``, else ``$NVR_DB_DIR``, else None."""
    return args.db_dir or os.environ.get("NVR_DB_DIR") or None


def _db_dir(args: argparse.Namespace) -> Path:
    return Path(_explicit_db_dir(args) or DEFAULT_DB_DIR)


def cmd_init(args: argparse.Namespace) -> int:
    from nvr.db.database import Database

    db_dir = _db_dir(args)
    u = Database.create(db_dir, RealClocks().realtime())
    print(f"created database {u} in {db_dir}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from nvr.offline.check import check

    report = check(
        _db_dir(args),
        hash_files=args.hash,
        delete_orphan_rows=args.delete_orphan_rows,
        trash_orphan_files=args.trash_orphan_files,
        progress=sys.stderr if sys.stderr.isatty() else None,
    )
    for line in report.problems:
        print(line)
    repaired = f", {report.repaired} repaired" if report.repaired else ""
    print(
        f"checked {report.recordings} recordings, {report.files} files "
        f"({report.garbage} garbage, {report.uncommitted_files} never committed): "
        f"{len(report.problems)} problems{repaired}",
        file=sys.stderr,
    )
    return 0 if report.unrepaired == 0 else 1


def cmd_upgrade(args: argparse.Namespace) -> int:
    from nvr.db.upgrade import upgrade

    result = upgrade(
        _db_dir(args),
        now_sec=RealClocks().realtime() // UNITS_PER_SEC,
        preset_journal=args.preset_journal,
        vacuum=not args.no_vacuum,
    )
    if result.backup is None:
        print(f"database is already at schema version {result.new_version}; nothing to do")
    else:
        print(
            f"upgraded from schema version {result.old_version} to {result.new_version}; "
            f"the old database is copied to {result.backup}. Verify with `nvr run --read-only`."
        )
    return 0


def _setup_logging(level: str, fmt: str) -> None:
    import logging

    if fmt == "json":
        import json

        class JsonFormatter(logging.Formatter):
            def format(self, record: logging.LogRecord) -> str:
                out = {
                    "level": record.levelname.lower(),
                    "logger": record.name,
                    "msg": record.getMessage(),
                }
                if record.exc_info:
                    out["exc"] = self.formatException(record.exc_info)
                return json.dumps(out)

        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    else:
        # systemd's journal adds its own timestamps; keep lines short and greppable.
        logging.basicConfig(
            level=level.upper(), format="%(levelname)s %(name)s: %(message)s", force=True
        )


def _load_run_config(args: argparse.Namespace) -> Config:
    from dataclasses import replace

    cfg = load_config(args.config)
    explicit = _explicit_db_dir(args)
    if explicit:
        cfg = replace(cfg, db_dir=Path(explicit))
    if getattr(args, "http", None):
        # one bind at that address, otherwise as the config's first bind (or the default)
        parse_address(args.http, where="--http")
        first = cfg.binds[0] if cfg.binds else BindConfig()
        cfg = replace(cfg, binds=(replace(first, address=args.http),))
    return cfg


def cmd_run(args: argparse.Namespace) -> int:
    import trio

    from nvr import daemon

    cfg = _load_run_config(args)
    _setup_logging(cfg.log_level, cfg.log_format)
    trio.run(lambda: daemon.run(cfg, read_only=args.read_only))
    return 0


def _read_password(args: argparse.Namespace) -> str | None:
    if not getattr(args, "password_stdin", False):
        return None
    line = sys.stdin.readline()
    if not line:
        raise errors.InvalidArgument("--password-stdin: nothing on standard input")
    return line.rstrip("\r\n")


def cmd_dir_add(args: argparse.Namespace) -> int:
    row = admin.add_dir(_db_dir(args), Path(args.path))
    print(f"added sample file directory {row.path} (id {row.id})")
    return 0


def cmd_dir_list(args: argparse.Namespace) -> int:
    with admin.open_db(_db_dir(args), read_only=True) as db:
        for d in db.dirs.values():
            streams = db.streams_in_dir(d.id)
            used = sum(s.committed.sample_file_bytes for s in streams)
            print(f"{d.id}\t{d.path}\t{len(streams)} streams\t{format_size(used)} used")
    return 0


def _stream_specs(args: argparse.Namespace) -> dict[str, admin.StreamSpec]:
    retain = parse_size(args.retain_bytes)
    days = args.retain_days or None
    specs = {
        "main": admin.StreamSpec(
            args.main_url, retain, args.flush_if_sec, args.rtsp_transport, retain_days=days
        )
    }
    if args.sub_url:
        sub_retain = (
            parse_size(args.sub_retain_bytes) if args.sub_retain_bytes else retain // 10
        )
        specs["sub"] = admin.StreamSpec(
            args.sub_url, sub_retain, args.flush_if_sec, args.rtsp_transport, retain_days=days
        )
    return specs


def cmd_camera_add(args: argparse.Namespace) -> int:
    cam = admin.add_camera(
        _db_dir(args),
        name=args.name,
        dir_path=Path(args.dir),
        streams=_stream_specs(args),
        description=args.description,
        username=args.username,
        password=_read_password(args),
    )
    print(f"added camera {cam.short_name} ({cam.uuid}) with streams {', '.join(cam.streams)}")
    return 0


def cmd_camera_list(args: argparse.Namespace) -> int:
    with admin.open_db(_db_dir(args), read_only=True) as db:
        for cam in db.cameras.values():
            print(f"{cam.short_name}\t{cam.uuid}\t{cam.description}")
            for type_, sid in sorted(cam.streams.items()):
                st = db.streams[sid]
                c = st.committed
                print(
                    f"  {type_}\t{st.config.url}\t{st.config.mode}\t"
                    f"keep {format_size(st.config.retain_bytes)}"
                    + (f" / {st.config.retain_days} days" if st.config.retain_days else "")
                    + "\t"
                    f"{c.num_recordings} recordings, {format_size(c.sample_file_bytes)}"
                )
    return 0


def cmd_camera_edit(args: argparse.Namespace) -> int:
    urls = {t: u for t, u in (("main", args.main_url), ("sub", args.sub_url)) if u}
    cam = admin.edit_camera(
        _db_dir(args),
        args.camera,
        new_name=args.name,
        description=args.description,
        username=args.username,
        password=_read_password(args),
        urls=urls,
        retain_bytes={
            t: parse_size(v)
            for t, v in (("main", args.retain_bytes), ("sub", args.sub_retain_bytes))
            if v
        },
        flush_if_sec=args.flush_if_sec,
        dir_path=Path(args.dir) if args.dir else None,
        retain_days=(
            {t: args.retain_days for t in ("main", "sub")}
            if args.retain_days is not None
            else None
        ),
    )
    print(f"updated camera {cam.short_name}")
    return 0


def cmd_camera_remove(args: argparse.Namespace) -> int:
    n = admin.remove_camera(_db_dir(args), args.camera, delete_recordings=args.delete_recordings)
    print(f"removed camera {args.camera}" + (f" and {n} recordings" if n else ""))
    return 0


def _perms_arg(text: str | None) -> frozenset[str] | None:
    from nvr.db.auth import parse_permissions

    return None if text is None else parse_permissions(text.split(","))


def _new_password(args: argparse.Namespace) -> str | None:
    """The password from ``--password-stdin``, else typed twice at a terminal, else None
    (for ``user add``: no password yet)."""
    password = _read_password(args)
    if password is None and args.prompt and sys.stdin.isatty():
        import getpass

        password = getpass.getpass(f"new password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise errors.InvalidArgument("the passwords differ")
    if password is not None and not password:
        raise errors.InvalidArgument("the password must not be empty")
    return password


def cmd_user_add(args: argparse.Namespace) -> int:
    password = _new_password(args)
    user = admin.add_user(
        _db_dir(args),
        args.name,
        password=password,
        permissions=_perms_arg(args.perms) or frozenset(),
    )
    print(f"added user {user.username} (id {user.id})")
    if password is None:
        print(f"it has no password yet: set one with `nvr config user passwd {user.username}`")
    return 0


def cmd_user_passwd(args: argparse.Namespace) -> int:
    if args.clear:
        admin.set_password(_db_dir(args), args.name, None)
        print(f"cleared the password of {args.name}: it cannot log in; its sessions ended")
        return 0
    password = _new_password(args)
    if password is None:
        raise errors.InvalidArgument(
            "no password: use --password-stdin, a terminal, or --clear to remove it"
        )
    admin.set_password(_db_dir(args), args.name, password)
    print(f"changed the password of {args.name}; its sessions ended")
    return 0


def cmd_user_disable(args: argparse.Namespace) -> int:
    admin.update_user(_db_dir(args), args.name, disabled=args.disable)
    if args.disable:
        print(f"disabled user {args.name}; its sessions ended")
    else:
        print(f"enabled user {args.name}")
    return 0


def cmd_user_perms(args: argparse.Namespace) -> int:
    perms = _perms_arg(args.perms) or frozenset()
    admin.update_user(_db_dir(args), args.name, permissions=perms)
    print(f"user {args.name} now has: {', '.join(sorted(perms)) or 'no permissions'}")
    return 0


def cmd_user_remove(args: argparse.Namespace) -> int:
    admin.remove_user(_db_dir(args), args.name)
    print(f"removed user {args.name} and its sessions")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    from nvr.db.auth import PERMISSIONS

    for user, sessions in admin.list_users(_db_dir(args)):
        perms = ",".join(p for p in PERMISSIONS if p in user.permissions) or "-"
        notes = ["password set" if user.password_hash else "no password"]
        if user.disabled:
            notes.append("disabled")
        notes.append(f"{sessions} sessions")
        if user.password_failure_count:
            notes.append(f"{user.password_failure_count} failed logins")
        print(f"{user.id}\t{user.username}\t{perms}\t{', '.join(notes)}")
    return 0


def cmd_login(args: argparse.Namespace) -> int:
    from nvr.db.auth import SessionPolicy

    session_id, created = admin.mint_session(
        _db_dir(args),
        args.name,
        permissions=_perms_arg(args.perms),
        description=args.description,
    )
    if args.cookie_jar:
        expires = created + SessionPolicy().max_age_sec
        admin.write_cookie_jar(
            Path(args.cookie_jar), session_id, domain=args.domain, expires_sec=expires
        )
        print(f"wrote a session for {args.name} to {args.cookie_jar}", file=sys.stderr)
    else:
        print(session_id)
    return 0


def _add_user_parsers(
    what: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    u = what.add_parser("user", help="users of the web interface and API")
    usub = u.add_subparsers(dest="action", required=True, metavar="ACTION")
    perms_help = "comma-separated: viewVideo,readCameraConfigs,updateSignals,adminUsers"

    def password_stdin(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from the first line of standard input "
            "(otherwise it is asked for at a terminal)",
        )
        p.set_defaults(prompt=True)

    p = usub.add_parser("add", help="add a user", parents=[common])
    p.add_argument("name")
    password_stdin(p)
    p.add_argument("--perms", default=None, help=perms_help)
    p.set_defaults(func=cmd_user_add)

    p = usub.add_parser(
        "passwd", help="set a user's password (ends its sessions)", parents=[common]
    )
    p.add_argument("name")
    password_stdin(p)
    p.add_argument("--clear", action="store_true", help="remove the password: no more logins")
    p.set_defaults(func=cmd_user_passwd)

    p = usub.add_parser(
        "disable", help="refuse a user's logins and end its sessions", parents=[common]
    )
    p.add_argument("name")
    p.set_defaults(func=cmd_user_disable, disable=True)

    p = usub.add_parser("enable", help="allow a disabled user again", parents=[common])
    p.add_argument("name")
    p.set_defaults(func=cmd_user_disable, disable=False)

    p = usub.add_parser("perms", help="set a user's permissions", parents=[common])
    p.add_argument("name")
    p.add_argument("perms", help=perms_help + ' ("" for none)')
    p.set_defaults(func=cmd_user_perms)

    p = usub.add_parser("remove", help="remove a user and its sessions", parents=[common])
    p.add_argument("name")
    p.set_defaults(func=cmd_user_remove)

    p = usub.add_parser("list", help="list users", parents=[common])
    p.set_defaults(func=cmd_user_list)


def _days(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if n < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return n


def _add_config_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    config = sub.add_parser("config", help="change cameras, directories and users (daemon stopped)")
    what = config.add_subparsers(dest="what", required=True, metavar="WHAT")

    d = what.add_parser("dir", help="sample file directories")
    dsub = d.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = dsub.add_parser("add", help="create and add a directory", parents=[common])
    p.add_argument("path")
    p.set_defaults(func=cmd_dir_add)
    p = dsub.add_parser("list", help="list directories", parents=[common])
    p.set_defaults(func=cmd_dir_list)

    c = what.add_parser("camera", help="cameras and their streams")
    csub = c.add_subparsers(dest="action", required=True, metavar="ACTION")

    def credentials(p: argparse.ArgumentParser) -> None:
        p.add_argument("--username", default=None, help="camera user name")
        p.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the camera password from the first line of standard input",
        )

    p = csub.add_parser("add", help="add a camera", parents=[common])
    p.add_argument("--name", required=True, help="short name, unique")
    p.add_argument("--main-url", required=True, help="rtsp:// URL of the main stream")
    p.add_argument("--sub-url", default=None, help="rtsp:// URL of the sub stream")
    p.add_argument("--dir", required=True, help="sample file directory to record into")
    p.add_argument(
        "--retain-bytes",
        required=True,
        metavar="SIZE",
        help="bytes of main-stream video to keep, e.g. 500G or 2TiB",
    )
    p.add_argument(
        "--sub-retain-bytes",
        default=None,
        metavar="SIZE",
        help="bytes of sub-stream video to keep (default: a tenth of the main's)",
    )
    p.add_argument(
        "--retain-days",
        type=_days,
        default=None,
        metavar="DAYS",
        help="also delete video older than this many days (default: no age limit)",
    )
    p.add_argument(
        "--flush-if-sec",
        type=int,
        default=60,
        help="commit recordings at most this long after they end (default 60)",
    )
    p.add_argument("--rtsp-transport", choices=("tcp", "udp"), default="tcp")
    p.add_argument("--description", default="")
    credentials(p)
    p.set_defaults(func=cmd_camera_add)

    p = csub.add_parser("list", help="list cameras and streams", parents=[common])
    p.set_defaults(func=cmd_camera_list)

    p = csub.add_parser("edit", help="change a camera", parents=[common])
    p.add_argument("camera", help="the camera's current short name")
    p.add_argument("--name", default=None, help="new short name")
    p.add_argument("--main-url", default=None)
    p.add_argument("--sub-url", default=None)
    p.add_argument("--dir", default=None, help="directory for newly added streams")
    p.add_argument("--retain-bytes", default=None, metavar="SIZE", help="for the main stream")
    p.add_argument("--sub-retain-bytes", default=None, metavar="SIZE", help="for the sub stream")
    p.add_argument(
        "--retain-days",
        type=_days,
        default=None,
        metavar="DAYS",
        help="delete video older than this many days, both streams (0: no age limit)",
    )
    p.add_argument("--flush-if-sec", type=int, default=None)
    p.add_argument("--description", default=None)
    credentials(p)
    p.set_defaults(func=cmd_camera_edit)

    p = csub.add_parser("remove", help="remove a camera", parents=[common])
    p.add_argument("camera")
    p.add_argument(
        "--delete-recordings",
        action="store_true",
        help="also delete its recordings (otherwise a camera with any is kept)",
    )
    p.set_defaults(func=cmd_camera_remove)

    _add_user_parsers(what, common)


def cmd_demo(args: argparse.Namespace) -> int:
    from nvr import demo

    return demo.main(Path(args.dir) if args.dir else None, args.http)


def cmd_ts(args: argparse.Namespace) -> int:
    tz = zone(args.tz)
    for text in args.times:
        try:
            t = parse_time(text, tz)
        except ValueError as e:
            raise errors.InvalidArgument(str(e)) from None
        print(f"{t} = {format_time(t, tz)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nvr", description="network video recorder")
    parser.add_argument(
        "--db-dir",
        default=None,
        help=f"database directory (default: $NVR_DB_DIR, the config file's, or {DEFAULT_DB_DIR})",
    )
    # Options like --db-dir may come after the subcommand too: each subcommand accepts it
    # again, without a default of its own, so the top-level default stays in force.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db-dir",
        default=argparse.SUPPRESS,
        help="database directory (same as before the command)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="record and serve (the daemon)", parents=[common])
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="daemon settings (TOML; see conf/nvr.example.toml)",
    )
    p.add_argument(
        "--read-only", action="store_true", help="open the database read-only: do not record"
    )
    p.add_argument(
        "--http",
        metavar="HOST:PORT",
        default=None,
        help="serve on this address instead of the config's binds (port 0: any free port)",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("init", help="create a new, empty database", parents=[common])
    p.set_defaults(func=cmd_init)

    p = sub.add_parser(
        "check", help="verify the database and sample files (daemon stopped)", parents=[common]
    )
    p.add_argument("--hash", action="store_true", help="also verify every file's SHA-256")
    p.add_argument(
        "--delete-orphan-rows",
        action="store_true",
        help="repair: delete the rows of recordings whose sample file is missing",
    )
    p.add_argument(
        "--trash-orphan-files",
        action="store_true",
        help="repair: move sample files that have no row into the directory's trash/",
    )
    p.set_defaults(func=cmd_check)

    p = sub.add_parser(
        "upgrade", help="upgrade the database schema (daemon stopped)", parents=[common]
    )
    p.add_argument(
        "--preset-journal",
        default="delete",
        choices=("delete", "truncate", "persist", "memory", "wal", "off"),
        help="journal mode while upgrading (default delete; WAL is restored afterwards)",
    )
    p.add_argument("--no-vacuum", action="store_true", help="skip the vacuum after upgrading")
    p.set_defaults(func=cmd_upgrade)

    _add_config_parsers(sub, common)

    p = sub.add_parser(
        "login",
        help="make a session for a script (daemon stopped): prints its id, the value of cookie s",
        parents=[common],
    )
    p.add_argument("name", help="the user the session belongs to")
    p.add_argument(
        "--perms", default=None, help="limit the session to these of the user's permissions"
    )
    p.add_argument("--cookie-jar", default=None, metavar="FILE", help="write a curl cookie jar")
    p.add_argument(
        "--domain",
        default="localhost",
        help="host name the cookie jar's cookie is for (default: localhost)",
    )
    p.add_argument("--description", default="nvr login", help="noted with the session")
    p.set_defaults(func=cmd_login)

    p = sub.add_parser("demo", help="record two synthetic cameras into a throw-away directory")
    p.add_argument("--dir", default=None, help="data directory (default: a new temporary one)")
    p.add_argument("--http", default="127.0.0.1:8080", help="address for the web UI")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("ts", help="convert between 90 kHz timestamps and dates")
    p.add_argument("times", nargs="+", metavar="TIME", help="90k integer or ISO 8601 time")
    p.add_argument("--tz", default=None, help="IANA time zone (default: the system's)")
    p.set_defaults(func=cmd_ts)
    return parser


def _only_nvr_error(group: BaseExceptionGroup[BaseException]) -> errors.NvrError | None:
    """The first ``NvrError`` inside a group of nothing else (however nested)."""
    found, rest = group.split(errors.NvrError)
    if found is None or rest is not None:
        return None
    leaf: BaseException = found
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    return leaf if isinstance(leaf, errors.NvrError) else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Command = args.func
    try:
        try:
            return func(args)
        except BaseExceptionGroup as group:
            # trio's nurseries wrap what a task raised; one NvrError is still one line
            only = _only_nvr_error(group)
            if only is None:
                raise
            raise only from group
    except errors.NvrError as e:
        if os.environ.get("NVR_DEBUG"):
            raise
        print(f"nvr {args.command}: {e}", file=sys.stderr)
        # Like argparse: 2 for what the user typed or configured wrong, 1 for the rest.
        return 2 if isinstance(e, errors.InvalidArgument) else 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
