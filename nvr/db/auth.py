"""Users and sessions: the ``user`` and ``user_session`` tables and the rules around them.

What lives here:
- the permission vocabulary (``PERMISSIONS``: Moonfire NVR's names plus ``protectVideo``,
  ``adminConfig`` for the configuration routes and ``redactVideo`` for tombstones) and
  a user's camera limit (``User.cameras``: None, every camera; else the uuids of the only
  cameras any of its permissions apply to, kept as ``"cameras"`` in the permissions JSON);
- users: add, rename, disable, set permissions and preferences, set or clear the
  password (argon2id PHC strings from ``argon2-cffi``), remove;
- sessions: ``create_session`` makes a random id (``secrets``), hands it to the caller
  once and stores only its SHA-256; the CSRF token is derived from the session's stored
  seed, so it survives restarts and is never stored itself. ``authenticate`` looks a
  cookie value up and enforces the idle timeout and the absolute lifetime
  (``SessionPolicy``; Moonfire's sessions never expire), revoking an expired session
  with reason "expired". A session's effective permissions are its own (fixed at login)
  intersected with the user's current ones, so taking a permission away or disabling a
  user takes effect at once; changing a password revokes the user's other sessions.

The database is the truth: nothing about users or sessions is cached. The only
in-memory state is a count of session uses not yet written: a session's last use is
written at most once per ``USE_WRITE_INTERVAL_SEC`` (not on every request of a video
player), which is far finer than any idle timeout.

Wall time comes from the ``now`` callable (``Clocks.realtime``), never from ``time``.
Hashing and verifying passwords is deliberately slow CPU work: the web layer runs
``hash_password``/``verify_password`` through ``run_blocking``; everything else is a
short SQLite transaction in the calling (trio) thread, like the rest of ``db``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import argon2

from nvr.base import errors
from nvr.base.time90k import UNITS_PER_SEC, Time
from nvr.db import raw
from nvr.db.database import Database

log = logging.getLogger(__name__)

PERMISSIONS = (
    "viewVideo", "readCameraConfigs", "updateSignals", "adminUsers", "protectVideo",
    "adminConfig", "redactVideo",
)
#: ``update_user``'s "leave the camera limit as it is"
KEEP: Any = ...

#: ``user_session.flags`` bits (schema.sql)
FLAG_HTTP_ONLY = 1
FLAG_SECURE = 2
FLAG_SAME_SITE_LAX = 4
FLAG_SAME_SITE_STRICT = 8

#: ``user_session.revocation_reason`` values (schema.sql)
REVOKED_LOGOUT = 1
REVOKED_PASSWORD_CHANGE = 2
REVOKED_ADMIN = 3
REVOKED_EXPIRED = 4

#: the cookie that carries a session id (Moonfire NVR's name), on the web and in
#: ``nvr login``'s cookie jars
SESSION_COOKIE = "s"
SESSION_ID_BYTES = 32
SEED_BYTES = 32
USE_WRITE_INTERVAL_SEC = 60
MAX_USERNAME = 64
_SESSION_ID_RE = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 bytes, unpadded base64url


def parse_permissions(items: Iterable[str]) -> frozenset[str]:
    """Checks permission names; unknown ones are an ``InvalidArgument`` naming them."""
    perms = frozenset(p.strip() for p in items if p.strip())
    unknown = sorted(perms - set(PERMISSIONS))
    if unknown:
        raise errors.InvalidArgument(
            f"unknown permission {', '.join(map(repr, unknown))} (known: {', '.join(PERMISSIONS)})"
        )
    return perms


def permissions_to_json(
    perms: frozenset[str], cameras: frozenset[uuid.UUID] | None = None
) -> str:
    d: dict[str, Any] = {p: p in perms for p in PERMISSIONS}
    if cameras is not None:
        d["cameras"] = sorted(str(c) for c in cameras)
    return json.dumps(d)


def permissions_from_json(text: str) -> frozenset[str]:
    d = json.loads(text)
    return frozenset(p for p in PERMISSIONS if d.get(p) is True)


def cameras_from_json(text: str) -> frozenset[uuid.UUID] | None:
    """The camera limit in a permissions JSON (None: none). Unreadable entries limit
    to nothing rather than to everything."""
    value = json.loads(text).get("cameras")
    if value is None:
        return None
    out = set()
    for item in value if isinstance(value, list) else []:
        try:
            out.add(uuid.UUID(str(item)))
        except ValueError:
            log.error("ignoring an unreadable camera %r in a user's permissions", item)
    return frozenset(out)


def check_username(name: str) -> None:
    if not 1 <= len(name) <= MAX_USERNAME or not name.isprintable() or name != name.strip():
        raise errors.InvalidArgument(
            f"user name {name!r} must be 1 to {MAX_USERNAME} printable characters without "
            "leading or trailing spaces"
        )


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """When sessions end by themselves."""

    #: a session unused for this long is expired
    idle_timeout_sec: int = 30 * 86400
    #: a session is expired this long after login, however much it is used
    max_age_sec: int = 90 * 86400


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    disabled: bool
    preferences: dict[str, Any]
    password_hash: str | None = field(repr=False)
    password_id: int
    password_failure_count: int
    permissions: frozenset[str]
    #: None: every camera; else the only cameras the permissions apply to
    cameras: frozenset[uuid.UUID] | None = None

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> User:
        uid, name, config, pw_hash, pw_id, failures, perms = row
        cfg = json.loads(config)
        return cls(
            uid,
            name,
            bool(cfg.get("disabled", False)),
            cfg.get("preferences") or {},
            pw_hash,
            pw_id,
            failures,
            permissions_from_json(perms),
            cameras_from_json(perms),
        )

    def config_json(self) -> str:
        return json.dumps({"disabled": self.disabled, "preferences": self.preferences})


@dataclass(frozen=True, slots=True)
class Session:
    """A live session, as ``authenticate`` finds it."""

    id_hash: bytes = field(repr=False)
    user: User
    seed: bytes = field(repr=False)
    flags: int
    creation_time_sec: int
    #: the session's own permissions intersected with the user's current ones
    permissions: frozenset[str]

    @property
    def csrf(self) -> str:
        return csrf_token(self.seed)


def csrf_token(seed: bytes) -> str:
    """The session's CSRF token: a keyed hash of its seed (24 base64url characters)."""
    digest = hmac.new(seed, b"nvr csrf token v1", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def hash_session_id(session_id: str) -> bytes | None:
    """SHA-256 of the raw bytes of a session id as the cookie carries it; None when the
    text cannot be a session id."""
    if not _SESSION_ID_RE.fullmatch(session_id):
        return None
    try:
        raw_id = base64.urlsafe_b64decode(session_id + "=")
    except (binascii.Error, ValueError):
        return None
    return hashlib.sha256(raw_id).digest()


def default_hasher() -> argon2.PasswordHasher:
    """argon2id with argon2-cffi's default (RFC 9106 low-memory) parameters."""
    return argon2.PasswordHasher()


class Auth:
    """Users and sessions of one open ``Database``. See the module docstring."""

    def __init__(
        self,
        db: Database,
        *,
        now: Callable[[], Time],
        policy: SessionPolicy | None = None,
        hasher: argon2.PasswordHasher | None = None,
    ) -> None:
        self.db = db
        self._now = now
        self.policy = policy or SessionPolicy()
        self.hasher = hasher or default_hasher()
        # Verified against when the user does not exist, so that an unknown name costs
        # as much time as a wrong password (no user enumeration by timing). Made on first
        # need: the command line rarely needs it.
        self._dummy: str | None = None
        #: session hash -> (uses not yet written, when last written, last use), in unix
        #: seconds; bounded by the number of live sessions in use
        self._uses: dict[bytes, tuple[int, int, int]] = {}

    def _now_sec(self) -> int:
        return self._now() // UNITS_PER_SEC

    # -- passwords (CPU-heavy: the web layer calls these through run_blocking) ---------

    def hash_password(self, password: str) -> str:
        if not password:
            raise errors.InvalidArgument("the password must not be empty")
        return self.hasher.hash(password)

    def verify_password(self, user: User | None, password: str) -> bool:
        """True when ``user`` exists, has a password and ``password`` is it. Costs the
        same time whether or not the user exists."""
        target = user.password_hash if user is not None and user.password_hash else None
        if target is None and self._dummy is None:
            self._dummy = self.hasher.hash(secrets.token_hex(16))
        try:
            return self.hasher.verify(target or self._dummy or "", password) and target is not None
        except argon2.exceptions.VerificationError:
            return False
        except argon2.exceptions.InvalidHashError:
            log.error("user %r has an unreadable password hash", user.username if user else "")
            return False

    def needs_rehash(self, user: User) -> bool:
        return user.password_hash is not None and self.hasher.check_needs_rehash(user.password_hash)

    # -- users --------------------------------------------------------------------------

    def list_users(self) -> list[User]:
        with self.db._read("listing users") as conn:
            return [User.from_row(r) for r in raw.list_users(conn)]

    def get_user(self, user_id: int) -> User:
        if not 0 < user_id < 1 << 63:  # beyond SQLite's integers: no such user
            raise errors.NotFound(f"no user with id {user_id}")
        with self.db._read("reading a user") as conn:
            row = raw.get_user(conn, user_id)
        if row is None:
            raise errors.NotFound(f"no user with id {user_id}")
        return User.from_row(row)

    def find_user(self, username: str) -> User | None:
        with self.db._read("reading a user") as conn:
            row = raw.get_user_by_name(conn, username)
        return None if row is None else User.from_row(row)

    def user_by_name(self, username: str) -> User:
        user = self.find_user(username)
        if user is None:
            raise errors.NotFound(f"no user named {username!r}")
        return user

    def add_user(
        self,
        username: str,
        *,
        password_hash: str | None = None,
        permissions: frozenset[str] = frozenset(),
        disabled: bool = False,
        preferences: dict[str, Any] | None = None,
        cameras: frozenset[uuid.UUID] | None = None,
    ) -> User:
        check_username(username)
        config = json.dumps({"disabled": disabled, "preferences": preferences or {}})
        try:
            with self.db._transaction(f"adding user {username!r}") as conn:
                uid = raw.insert_user(
                    conn, username, config, password_hash,
                    permissions_to_json(permissions, cameras),
                )
        except errors.FailedPrecondition:
            if self.find_user(username) is not None:
                raise errors.AlreadyExists(f"a user named {username!r} already exists") from None
            raise
        log.info("added user %r (id %d)", username, uid)
        return self.get_user(uid)

    def update_user(
        self,
        user_id: int,
        *,
        username: str | None = None,
        disabled: bool | None = None,
        permissions: frozenset[str] | None = None,
        preferences: dict[str, Any] | None = None,
        cameras: frozenset[uuid.UUID] | None = KEEP,
    ) -> User:
        """Changes the given fields (``cameras``: None lifts the limit; ``KEEP`` leaves
        it). Disabling a user revokes all its sessions."""
        old = self.get_user(user_id)
        if username is not None:
            check_username(username)
            other = self.find_user(username)
            if other is not None and other.id != user_id:
                raise errors.AlreadyExists(f"a user named {username!r} already exists")
        new = User(
            old.id,
            old.username if username is None else username,
            old.disabled if disabled is None else disabled,
            old.preferences if preferences is None else preferences,
            old.password_hash,
            old.password_id,
            old.password_failure_count,
            old.permissions if permissions is None else permissions,
            old.cameras if cameras is KEEP else cameras,
        )
        with self.db._transaction(f"updating user {old.username!r}") as conn:
            raw.update_user(
                conn, user_id, new.username, new.config_json(),
                permissions_to_json(new.permissions, new.cameras),
            )
            if new.disabled and not old.disabled:
                raw.revoke_user_sessions(
                    conn, user_id, self._now_sec(), REVOKED_ADMIN, "user disabled", None
                )
        return new

    def set_password(
        self, user_id: int, password_hash: str | None, *, keep_session: Session | None = None
    ) -> None:
        """Sets (or with None clears) the password and revokes every session of the user
        but ``keep_session`` (the caller's own, when users change their own password)."""
        keep = keep_session.id_hash if keep_session is not None else None
        self.get_user(user_id)  # NotFound unless it exists
        with self.db._transaction("setting a password") as conn:
            raw.set_user_password(conn, user_id, password_hash)
            n = raw.revoke_user_sessions(
                conn, user_id, self._now_sec(), REVOKED_PASSWORD_CHANGE, None, keep
            )
        log.info("password of user id %d changed; %d sessions revoked", user_id, n)

    def rehash_password(self, user: User, password_hash: str) -> None:
        with self.db._transaction("upgrading a password hash") as conn:
            raw.rehash_user_password(conn, user.id, password_hash)

    def note_login_failure(self, user: User | None) -> None:
        """Counts a failed login against the user (``password_failure_count``)."""
        if user is None or self.db.read_only:
            return
        with self.db._transaction("counting a failed login") as conn:
            raw.count_password_failure(conn, user.id)

    def remove_user(self, user_id: int) -> None:
        """Deletes the user and all its sessions."""
        user = self.get_user(user_id)
        with self.db._transaction(f"removing user {user.username!r}") as conn:
            raw.delete_user(conn, user_id)
        log.info("removed user %r (id %d)", user.username, user_id)

    def live_session_counts(self) -> dict[int, int]:
        with self.db._read("counting sessions") as conn:
            return raw.count_live_sessions(conn)

    # -- sessions -----------------------------------------------------------------------

    def script_session(
        self, username: str, *, permissions: frozenset[str] | None, description: str | None
    ) -> tuple[str, Session]:
        """A session for a script (``nvr login``): by user name, HttpOnly, SameSite=Lax,
        limited to ``permissions`` (None: all of the user's)."""
        return self.create_session(
            self.user_by_name(username),
            flags=FLAG_HTTP_ONLY | FLAG_SAME_SITE_LAX,
            permissions=permissions,
            description=description,
        )

    def create_session(
        self,
        user: User,
        *,
        flags: int,
        permissions: frozenset[str] | None = None,
        description: str | None = None,
        domain: str | None = None,
        user_agent: str | None = None,
        peer_addr: str | None = None,
    ) -> tuple[str, Session]:
        """Mints a session for ``user`` (which must be enabled). Returns the session id,
        which exists nowhere else from now on, and the session. ``permissions`` limits
        the session to a subset of the user's."""
        if user.disabled:
            raise errors.PermissionDenied(f"user {user.username!r} is disabled")
        perms = user.permissions if permissions is None else permissions
        if not perms <= user.permissions:
            extra = ", ".join(sorted(perms - user.permissions))
            raise errors.PermissionDenied(f"user {user.username!r} does not have {extra}")
        raw_id = secrets.token_bytes(SESSION_ID_BYTES)
        session_id = base64.urlsafe_b64encode(raw_id).decode().rstrip("=")
        id_hash = hashlib.sha256(raw_id).digest()
        seed = secrets.token_bytes(SEED_BYTES)
        now = self._now_sec()
        row = raw.SessionRow(
            id_hash, user.id, seed, flags, domain, description, user.password_id, now,
            user_agent, peer_addr, permissions_to_json(perms),
        )  # fmt: skip
        with self.db._transaction(f"creating a session for {user.username!r}") as conn:
            raw.insert_session(conn, row)
        return session_id, Session(id_hash, user, seed, flags, now, perms)

    def authenticate(
        self, session_id: str, *, user_agent: str | None = None, peer_addr: str | None = None
    ) -> Session | None:
        """The live session a cookie value names, or None (unknown, revoked, expired, or
        its user disabled or gone). Notes the use."""
        id_hash = hash_session_id(session_id)
        if id_hash is None:
            return None
        with self.db._read("looking up a session") as conn:
            row = raw.get_session(conn, id_hash)
            user_row = raw.get_user(conn, row[0]) if row is not None else None
        if row is None or user_row is None:
            return None
        _, seed, flags, created, revoked, last_use, _, perms = row
        if revoked is not None:
            return None
        user = User.from_row(user_row)
        if user.disabled:
            return None
        now = self._now_sec()
        last = max(created, last_use or 0, self._uses.get(id_hash, (0, 0, 0))[2])
        policy = self.policy
        if now - created >= policy.max_age_sec or now - last >= policy.idle_timeout_sec:
            what = "lifetime" if now - created >= policy.max_age_sec else "idle timeout"
            self._revoke(id_hash, REVOKED_EXPIRED, f"{what} reached", user_agent, peer_addr)
            return None
        self._note_use(id_hash, now, user_agent, peer_addr)
        return Session(
            id_hash, user, bytes(seed), flags, created,
            permissions_from_json(perms) & user.permissions,
        )  # fmt: skip

    def _note_use(
        self, id_hash: bytes, now: int, user_agent: str | None, peer_addr: str | None
    ) -> None:
        uses, written, _ = self._uses.get(id_hash, (0, 0, 0))
        uses += 1
        if now - written < USE_WRITE_INTERVAL_SEC or self.db.read_only:
            self._uses[id_hash] = (uses, written, now)
            return
        try:
            with self.db._transaction("noting a session's use") as conn:
                raw.note_session_use(conn, id_hash, now, user_agent, peer_addr, uses)
        except errors.NvrError as e:
            # Bookkeeping only: a busy or failing database must not fail the request.
            log.warning("could not note a session's use: %s", e)
            self._uses[id_hash] = (uses, written, now)
            return
        self._uses[id_hash] = (0, now, now)

    def revoke_session(
        self,
        session: Session,
        *,
        reason: int = REVOKED_LOGOUT,
        user_agent: str | None = None,
        peer_addr: str | None = None,
    ) -> None:
        self._revoke(session.id_hash, reason, None, user_agent, peer_addr)

    def _revoke(
        self,
        id_hash: bytes,
        reason: int,
        detail: str | None,
        user_agent: str | None,
        peer_addr: str | None,
    ) -> None:
        self._uses.pop(id_hash, None)
        if self.db.read_only:
            if reason == REVOKED_EXPIRED:
                return  # expiry is enforced at every lookup anyway
            raise errors.FailedPrecondition("the database is open read-only")
        with self.db._transaction("revoking a session") as conn:
            raw.revoke_session(
                conn, id_hash, self._now_sec(), user_agent, peer_addr, reason, detail
            )
