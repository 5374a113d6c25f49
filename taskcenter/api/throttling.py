"""Rate limits on a cache every web process shares.

The request throttles are DRF's own ``AnonRateThrottle`` and ``UserRateThrottle`` (see
``REST_FRAMEWORK`` in the settings); what makes them hold across gunicorn's processes and across
machines is Django's ``default`` cache, which the settings point at the database (or at Redis
when ``REDIS_URL`` is set) instead of per-process memory. The database cache is Django's with a
one-statement ``set`` (``taskcenter.lib.database_cache``), in an UNLOGGED table on PostgreSQL:
a request's history write is one round trip that waits for no flush to disk.

``FailedTokenThrottle`` limits something else: wrong bearer tokens per client address. DRF runs
throttles only after authentication succeeded or was skipped, so a guesser whose every request
fails authentication would never meet one; ``BearerTokenAuthentication`` asks this throttle
before it looks a token up and tells it about every token that matched nothing.

DRF's throttles read a client's history and write it back, so two processes that read the same
history both pass and one entry is lost: under a concurrent burst they let through more than
their rate (several times more, measured; see tests/taskcenter/api/test_throttling.py). For the
request rates, a fairness limit, that is the accepted cost of one cache write per request.
Failed tokens are a security limit, so their history is written under a lock in the shared
cache (``add`` is atomic on the database cache and on Redis): no failure is lost, and at most
``rate + concurrent guesses - 1`` wrong tokens are ever looked up per address and window.
"""

from __future__ import annotations

import time

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

# How long one failure's read-and-write may hold its client's lock.
LOCK_SECONDS = 5.0


class FailedTokenThrottle(SimpleRateThrottle):
    """``THROTTLE_FAILED_AUTH_RATE`` wrong tokens per client address; past it, every token
    check from that address is refused with 429 until old failures leave the window."""

    scope = "failed_auth"
    # Set by SimpleRateThrottle.__init__ from the rate; read only when a rate is configured.
    num_requests: int
    duration: int

    def get_cache_key(self, request: Request, view: object | None) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def _load(self, request: Request) -> None:
        self.key = self.get_cache_key(request, None)
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()

    def is_locked_out(self, request: Request) -> bool:
        """Whether this client has used up its failures; ``wait()`` then says for how long."""
        if self.rate is None:
            return False
        self._load(request)
        return len(self.history) >= self.num_requests

    def wait(self) -> float:
        """Seconds until enough failures leave the window for one more check."""
        oldest_counted = self.history[self.num_requests - 1]
        return max(oldest_counted + self.duration - self.now, 1.0)

    def record_failure(self, request: Request) -> None:
        """Count one wrong token (DRF's own history list, newest first), never losing one to a
        concurrent writer."""
        if self.rate is None:
            return
        lock = f"{self.get_cache_key(request, None)}:lock"
        deadline = time.monotonic() + LOCK_SECONDS
        # A holder that died leaves a lock that expires by itself after LOCK_SECONDS.
        while not self.cache.add(lock, 1, LOCK_SECONDS) and time.monotonic() < deadline:
            time.sleep(0.005)
        try:
            self._load(request)
            self.throttle_success()
        finally:
            self.cache.delete(lock)
