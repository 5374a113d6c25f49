"""Adding a platform account by logging in on the platform: social-auto-upload's login stream.

social-auto-upload opens the platform's creator page in a browser, sends the page's QR code to
its front end over Server-Sent Events, waits until the person has scanned it, keeps the
browser's cookies as the account's credentials and sends ``200`` (or ``500``). Here the platform
provider does the platform's side over HTTP (``PublishProvider.start_login``, ``login_status``,
``cancel_login``) and this module does the rest:

- ``login_events`` runs one login and yields what happens: the QR code as a data URL, a
  heartbeat after each look at the platform, then the outcome. Confirmed credentials are stored
  encrypted on the owner's account of that platform and name, made if it does not exist yet.
- ``event_stream`` turns those events into the stream the front end reads.

A stream holds a web thread, never a database connection: the connection the request used is
closed before the wait and opened again only to store the credentials. It stops at the
deadline (``PUBLISHING["LOGIN_TIMEOUT_SECONDS"]``) whatever happens, and sooner when the client
goes away: the heartbeat's write fails, the server closes the generator, and the login is
cancelled on the platform.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connections
from django.http import StreamingHttpResponse
from django.utils import timezone

from taskcenter.errors import PermanentError, RetryableError
from taskcenter.lib.streaming import ThreadedStreamingHttpResponse

from .models import LoginStatus, PlatformAccount
from .platforms import platform_name
from .providers import LoginProgress, LoginState, PublishProvider, get_provider

logger = logging.getLogger(__name__)

# What social-auto-upload's front end waits for after the QR code.
SUCCESS, FAILURE = "200", "500"
# After "200" the stream stays open this long (sending heartbeats) unless the client closes it
# first: social-auto-upload's page keeps its EventSource a second after "200", and a stream
# that ended before would reach it as a connection error.
LINGER_SECONDS = 5.0
HEARTBEAT_SECONDS = 1.0


@dataclass(frozen=True)
class LoginTarget:
    """Whose account on which platform a login is for; ``account_id`` if it exists already."""

    owner_id: int
    platform_type: int
    account_name: str
    account_id: int | None = None

    @property
    def platform(self) -> str:
        return platform_name(self.platform_type)


@dataclass(frozen=True)
class QrCode:
    data_url: str


@dataclass(frozen=True)
class StillWaiting:
    pass


@dataclass(frozen=True)
class LoginOutcome:
    ok: bool
    message: str
    account_id: int | None = None


LoginEvent = QrCode | StillWaiting | LoginOutcome


def login_target(owner_id: int, platform_type: int, account_name: str) -> LoginTarget:
    """The target of a login by ``owner_id``; another owner's account of that name is not it."""
    account_id = (
        PlatformAccount.objects.filter(
            owner_id=owner_id, platform_type=platform_type, account_name=account_name
        )
        .values_list("pk", flat=True)
        .first()
    )
    return LoginTarget(owner_id, platform_type, account_name, account_id)


def release_database_connections() -> None:
    """Close this thread's database connections before a long wait (they reopen on use).

    One held by a transaction is left alone: it is not this code's to close.
    """
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


def store_login(target: LoginTarget, progress: LoginProgress) -> PlatformAccount:
    """Keep confirmed credentials (encrypted) on the owner's account, made if need be; the
    account counts as logged in again."""
    fields = {
        "credentials": progress.credentials,
        "login_status": LoginStatus.VALID,
        "login_checked_at": timezone.now(),
    }
    # update_or_create locks the row it updates, and takes the row a concurrent login just made
    # when its own insert hits the unique constraint.
    account, _ = PlatformAccount.objects.update_or_create(
        owner_id=target.owner_id,
        platform_type=target.platform_type,
        account_name=target.account_name,
        defaults=fields,
        create_defaults={**fields, "name": progress.nickname},
    )
    return account


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def login_events(target: LoginTarget) -> Iterator[LoginEvent]:
    """Run one login on the platform with the configured provider; the last event is always a
    ``LoginOutcome``. Closing the generator early (the client went away) cancels the login on
    the platform."""
    config = settings.PUBLISHING
    timeout = float(config["LOGIN_TIMEOUT_SECONDS"])
    poll = max(0.05, float(config["LOGIN_POLL_SECONDS"]))
    deadline = time.monotonic() + timeout
    provider = get_provider()
    platform, account = target.platform, str(target.account_id or "")
    try:
        challenge = provider.start_login(platform, target.account_name, account=account)
    except (RetryableError, PermanentError) as exc:
        logger.warning("Login of %s on %s did not start: %s", target.account_name, platform, exc)
        yield LoginOutcome(False, f"The platform did not start the login: {exc}")
        return
    answered = False
    try:
        yield QrCode(_data_url(challenge.qr_png))
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                outcome = LoginOutcome(False, f"Nobody confirmed the login within {timeout:g} s")
                break
            time.sleep(min(poll, remaining))
            try:
                progress = provider.login_status(platform, challenge.login_id)
            except RetryableError as exc:  # a hiccup: ask again until the deadline
                logger.info("Login %s: asking again after: %s", challenge.login_id, exc)
                yield StillWaiting()
                continue
            except PermanentError as exc:
                outcome = LoginOutcome(False, f"The platform failed the login: {exc}")
                break
            if progress.status in LoginState.FINISHED:
                answered = True
                outcome = _finish(target, progress)
                break
            yield StillWaiting()
    finally:
        if not answered:
            _cancel(provider, platform, challenge.login_id)
    log = logger.info if outcome.ok else logger.warning
    log("Login of %s on %s: %s", target.account_name, platform, outcome.message)
    yield outcome


def _finish(target: LoginTarget, progress: LoginProgress) -> LoginOutcome:
    if progress.status != LoginState.CONFIRMED:
        return LoginOutcome(False, f"The login was {progress.status} on the platform")
    try:
        account = store_login(target, progress)
    except DatabaseError as exc:
        logger.exception("Login of %s: the credentials could not be stored", target.account_name)
        return LoginOutcome(False, f"The credentials could not be stored: {exc}")
    finally:
        release_database_connections()
    return LoginOutcome(True, "Logged in", account.pk)


def _cancel(provider: PublishProvider, platform: str, login_id: str) -> None:
    """Best effort: a login left waiting on the platform expires there by itself anyway."""
    try:
        provider.cancel_login(platform, login_id)
    except (RetryableError, PermanentError) as exc:
        logger.info("Login %s was not cancelled on the platform: %s", login_id, exc)


# --- the stream ---------------------------------------------------------------------------------


def _message(data: str) -> bytes:
    return f"data: {data}\n\n".encode()


HEARTBEAT = b": waiting\n\n"  # a comment line: EventSource ignores it, the socket write counts


def sse_messages(
    events: Iterator[LoginEvent], *, linger: float = LINGER_SECONDS
) -> Iterator[bytes]:
    """The stream social-auto-upload's front end reads: the QR code's data URL, then ``200``
    or ``500``; comments in between keep the connection checked. ``events`` is not started
    before the stream is: the request's middleware has finished with the database by then."""
    release_database_connections()
    yield b": login started\n\n"  # the response starts now, not after the platform answers
    outcome: LoginOutcome | None = None
    try:
        for event in events:
            if isinstance(event, QrCode):
                yield _message(event.data_url)
            elif isinstance(event, StillWaiting):
                yield HEARTBEAT
            else:
                outcome = event
    except Exception:  # the response is under way: the client can only be told "500"
        logger.exception("The login stream failed")
        outcome = None
    finally:
        # At once, not when collected: closing it cancels the login on the platform.
        close = getattr(events, "close", None)
        if close is not None:
            close()
    if outcome is None or not outcome.ok:
        # The page closes its EventSource on "500" as it reads it: nothing to wait for.
        yield _message(FAILURE)
        return
    yield _message(SUCCESS)
    waited = 0.0
    while waited < linger:
        step = min(HEARTBEAT_SECONDS, linger - waited)
        time.sleep(step)
        waited += step
        yield HEARTBEAT


def event_stream(events: Iterator[LoginEvent]) -> StreamingHttpResponse:
    """A ``text/event-stream`` response that no proxy buffers or caches."""
    # Threaded: under ASGI (run_service) Django would otherwise read the whole login first.
    response = ThreadedStreamingHttpResponse(sse_messages(events), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
