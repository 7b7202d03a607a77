"""Password guesses: how many, from where, for which name, and how many hashes at once.

Every password check (``POST /api/login``, and a password given as a precondition of
``PATCH /api/users/<id>``) goes through one ``LoginLimiter`` per daemon, shared by its
binds, in three steps:

1. ``admit`` checks the limits and **counts the attempt at once** against its address
   and its name, before the slow hash, so that concurrent guesses cannot all pass a check
   that only finished ones would fail (300 at once from one address used to get 110
   hashed against a limit of 20).
2. ``hashing`` holds one of ``concurrent_hashes`` slots while argon2id runs (64 MiB of
   memory each with argon2-cffi's defaults: memory stays flat however many requests
   arrive). A request waits for a slot at most ``hash_wait_sec``, then gets ``429``.
3. ``succeeded`` takes the attempt back out of its address's count and clears the name's;
   ``failed`` leaves it counted (and reports the counts for the log).

**The policy** (``LoginLimits``; all windows slide on the ``Clocks`` monotonic clock):

- per client address: at most ``per_address`` (20) attempts per ``address_window_sec``
  (10 minutes); beyond that, ``429`` with ``Retry-After`` until the oldest ages out;
- per user name (existing or not): after ``per_user`` (5) attempts without a success
  within ``user_window_sec`` (60 s), the name is locked **for addresses that have
  themselves tried and not succeeded within their window**. An address without such an
  attempt may still try the name: a correct password logs in (and clears the name's
  count); a wrong one is counted, and that address is then locked out of the name like
  the others.

Why: a lock on a name alone would let anyone keep the owner out for ever by guessing
five times a minute. With this rule one attacker's address runs into its own limit
first (20 guesses per 10 minutes), the owner logs in from a clean address while the
name is under attack, and an attacker with many addresses still gets only one guess per
address per window at a locked name. Unknown names are counted like known ones (no
enumeration by status), and the hash of an unknown name costs the same (``nvr.db.auth``).
At most ``max_keys`` addresses and names are remembered; the oldest are forgotten first.

This module knows nothing of HTTP: the caller passes the client's address and maps
``RateLimited`` to ``429`` with ``Retry-After``.
"""

from __future__ import annotations

import collections
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio

from nvr.base import errors
from nvr.base.clock import Clocks
from nvr.base.time90k import UNITS_PER_SEC, Duration


class RateLimited(errors.ResourceExhausted):
    """Too many attempts, or no hash slot in time: ``429`` with ``Retry-After``."""

    def __init__(self, message: str, retry_after_sec: int) -> None:
        super().__init__(message)
        self.retry_after_sec = retry_after_sec


@dataclass(frozen=True, slots=True)
class LoginLimits:
    #: attempts from one client address allowed per window
    per_address: int = 20
    address_window_sec: int = 10 * 60
    #: failed attempts for one user name (existing or not) before it is locked
    per_user: int = 5
    user_window_sec: int = 60
    #: addresses and names remembered at most (the oldest are forgotten first)
    max_keys: int = 10_000
    #: password hashes computed at once, by all binds together
    concurrent_hashes: int = 2
    #: how long a request waits for a hash slot before it is refused
    hash_wait_sec: float = 10.0


class _Window:
    """Attempt times per key within a sliding window."""

    def __init__(self, limit: int, window: Duration, max_keys: int) -> None:
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self.times: dict[str, collections.deque[Duration]] = {}

    def _prune(self, key: str, now: Duration) -> collections.deque[Duration] | None:
        q = self.times.get(key)
        if q is None:
            return None
        while q and q[0] <= now - self.window:
            q.popleft()
        if not q:
            del self.times[key]
            return None
        return q

    def wait(self, key: str, now: Duration) -> Duration:
        """How long until ``key`` may try again (0: now)."""
        q = self._prune(key, now)
        if q is None or len(q) < self.limit:
            return 0
        return q[-self.limit] + self.window - now

    def count(self, key: str, now: Duration) -> int:
        q = self._prune(key, now)
        return 0 if q is None else len(q)

    def add(self, key: str, now: Duration) -> None:
        q = self._prune(key, now)
        if q is None:
            q = self.times[key] = collections.deque(maxlen=self.limit)
        q.append(now)
        while len(self.times) > self.max_keys:
            del self.times[next(iter(self.times))]

    def remove(self, key: str, t: Duration) -> None:
        q = self.times.get(key)
        if q is not None and t in q:
            q.remove(t)

    def clear(self, key: str) -> None:
        self.times.pop(key, None)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One admitted password check (see ``LoginLimiter.admit``)."""

    address: str
    username: str
    at: Duration


@dataclass
class LoginLimiter:
    """See the module docstring. One per daemon, shared by its binds."""

    clocks: Clocks
    limits: LoginLimits = field(default_factory=LoginLimits)

    def __post_init__(self) -> None:
        lim = self.limits
        self._by_address = _Window(
            lim.per_address, lim.address_window_sec * UNITS_PER_SEC, lim.max_keys
        )
        self._by_user = _Window(lim.per_user, lim.user_window_sec * UNITS_PER_SEC, lim.max_keys)
        self._hash_slots = trio.Semaphore(lim.concurrent_hashes)
        #: password hashes running now (holding a slot)
        self.hashes_running = 0

    def admit(self, address: str, username: str) -> Attempt:
        """Raises ``RateLimited`` if the address or (for an address that has tried and
        not succeeded lately) the name is over its limit; else counts the attempt
        against both."""
        now = self.clocks.monotonic()
        wait = self._by_address.wait(address, now)
        if self._by_address.count(address, now):
            wait = max(wait, self._by_user.wait(username, now))
        if wait > 0:
            secs = max(1, math.ceil(wait / UNITS_PER_SEC))
            raise RateLimited(f"too many failed logins: try again in {secs} s", secs)
        self._by_address.add(address, now)
        self._by_user.add(username, now)
        return Attempt(address, username, now)

    def failed(self, attempt: Attempt) -> tuple[int, int]:
        """The attempt stays counted; returns the attempts now in the address's window
        and in the name's, for the log."""
        now = self.clocks.monotonic()
        return (
            self._by_address.count(attempt.address, now),
            self._by_user.count(attempt.username, now),
        )

    def succeeded(self, attempt: Attempt) -> None:
        """The attempt no longer counts against its address, nor earlier failures
        against the name."""
        self._by_address.remove(attempt.address, attempt.at)
        self._by_user.clear(attempt.username)

    @asynccontextmanager
    async def hashing(self) -> AsyncIterator[None]:
        """Holds a hash slot for the block; ``RateLimited`` if none frees up in time."""
        wait = self.limits.hash_wait_sec
        acquired = False
        with trio.move_on_after(wait):
            await self._hash_slots.acquire()
            acquired = True
        if not acquired:
            secs = max(1, math.ceil(wait))
            raise RateLimited(f"busy checking other passwords: try again in {secs} s", secs)
        self.hashes_running += 1
        try:
            yield
        finally:
            self.hashes_running -= 1
            self._hash_slots.release()
