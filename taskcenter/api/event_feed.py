"""The task events of this web process's open streams: one reader for all of them.

Every open ``/events/stream`` (and ``/tasks/{id}/stream``) is a ``Subscription`` of the one
``EventFeed`` of its process. The feed holds one thread and one database connection, whatever
the number of streams, and reads the events table by cursor (``id > newest seen``):

- on **PostgreSQL** when ``NOTIFY taskcenter_events`` arrives (a trigger sends it as an
  inserting transaction commits: migration ``0016_task_event_notify``), on a listening
  connection of its own, as the workers' wake-ups do (``execution.wakeup``);
- on **SQLite** every ``SQLITE_POLL_SECONDS`` (one machine, one writer: a poll by primary key
  is cheap);
- everywhere, every ``SAFETY_READ_SECONDS`` besides: a notification lost with a dropped link
  delays events by that much, never loses them.

The events table is the source whatever the engine (the RQ engine's workers write their events
to the same database), so the feed needs no channel of the engine's own.

Ids are handed out when a row is inserted, not when its transaction commits: on PostgreSQL a
long transaction's event (id 10) may become visible after a later one (id 11) was read. The
feed remembers such holes below its cursor and reads them again for ``GAP_PATIENCE_SECONDS``,
so a late event is still delivered (after 11: streams do not promise id order, only that
nothing is skipped). A hole that never fills was a rolled-back insert.

Each subscription gets the events it may see: its user's (staff: everyone's), of its one task
or of the tasks its filter selects (the task list's own ``TaskFilter``, run in the database on
the ids just read), first the ones after its ``Last-Event-ID``, then the live ones. Batches go
to the stream's event loop through ``call_soon_threadsafe``, one call per loop per read; a
stream that falls ``MAX_PENDING_BATCHES`` behind is ended, and its client resumes from its last
id. The feed also sends the keep-alives: an empty batch to every stream that was sent nothing for
``STREAM_HEARTBEAT_SECONDS`` (a timer per stream would be rescheduled at every batch).

With many streams the feed reads less often, at most every
``STREAM_READ_GAP_PER_STREAM_SECONDS`` per stream (``MAX_READ_GAP`` at most): every read wakes
every stream, and a thousand streams woken at each of a hundred commits a second would leave no
time for anything else. A few streams get their events within milliseconds (on PostgreSQL);
a thousand in the stream server every 0.6 s, woken a few at a time across that time
(``_hand_over``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, connections
from django.db.models import Q, QuerySet

from taskcenter.execution.wakeup import PostgresListener
from taskcenter.lib.db_outage import DATABASE_ERRORS
from taskcenter.models import Task, TaskEvent

logger = logging.getLogger(__name__)

CHANNEL = "taskcenter_events"
SQLITE_POLL_SECONDS = 0.2
SAFETY_READ_SECONDS = 2.0
GAP_PATIENCE_SECONDS = 60.0
# Rows per query: a backlog (a resume after an hour away) is read in pages.
PAGE = 500
# Batches a stream may have waiting before it is ended (its client then resumes by id).
MAX_PENDING_BATCHES = 1000
# Back-off when the database is away.
OUTAGE_DELAY_SECONDS = 1.0
# The cap of the time between two reads (see the module's docstring; the time per stream and
# the pause between two groups of streams woken are settings, STREAM_*).
MAX_READ_GAP = 1.0
# Streams woken together on their loop (_hand_over).
WAKE_SLICE = 10

EVENT_FIELDS = (
    "id",
    "task_id",
    "execution_id",
    "verb",
    "actor",
    "from_status",
    "to_status",
    "data",
    "at",
    "task__owner_id",
    "task__status",
    "task__progress",
    "task__progress_message",
    "execution__result_count",
)

Event = dict[str, Any]
# What a stream is handed: a list of events (empty: a keep-alive), or None for "this stream is
# over".
Batch = list[Event] | None


class Inbox:
    """A stream's batches on its event loop: filled by the loop's hand-overs, emptied by the
    stream, which takes all that is waiting at once (one write for several batches)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.batches: deque[Batch] = deque()
        self.waiter: asyncio.Future[None] | None = None

    def put(self, batch: Batch) -> None:
        """On the loop's thread."""
        self.batches.append(batch)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def take(self) -> list[Batch]:
        while not self.batches:
            self.waiter = self.loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        taken = list(self.batches)
        self.batches.clear()
        return taken


@dataclass(eq=False)
class Subscription:
    """One open stream: whose it is, what it selects, and where its events go."""

    user_id: int
    see_all: bool
    deliver: Callable[[Batch], None]
    task_id: int | None = None
    # The task list's filtered queryset (already scoped to the user), or None: no filter.
    tasks: QuerySet[Task] | None = None
    # Replay events after this id first (a Last-Event-ID); None: only what happens from now.
    after: int | None = None
    pending: int = 0
    closed: bool = False
    replayed: bool = field(default=False)
    # A stream served on an event loop (ASGI): its batches go to ``inbox``, handed over together
    # with the other streams of the same loop (see ``EventFeed.read``); else to ``deliver``.
    inbox: Inbox | None = None
    # When the feed last handed it anything (monotonic): the keep-alives go by it.
    sent_at: float = field(default_factory=time.monotonic)

    # ``same_selection``'s answer, made once.
    selection_key: tuple | None = field(default=None, repr=False)

    def same_selection(self) -> tuple:
        """What decides this stream's selection: streams with the same key select the same
        events, and the feed selects once per key. A filter counts by its SQL and parameters
        (already scoped to the user): a thousand pages open on one filtered list cost one query
        per read, not a thousand (which took both cores at 1,000 streams, bench/live.py)."""
        if self.selection_key is None:
            filtered = None
            if self.tasks is not None:
                sql, params = self.tasks.query.sql_with_params()
                filtered = (sql, repr(params))
            self.selection_key = (self.see_all or self.user_id, self.task_id, filtered)
        return self.selection_key

    def visible(self) -> QuerySet[TaskEvent]:
        events = TaskEvent.objects.all()
        if not self.see_all:
            events = events.filter(task__owner_id=self.user_id)
        if self.task_id is not None:
            events = events.filter(task_id=self.task_id)
        if self.tasks is not None:
            events = events.filter(task__in=self.tasks.values("pk"))
        return events

    def select(self, batch: list[Event]) -> list[Event]:
        """The events of ``batch`` (just read, any user's) that this stream may see."""
        chosen = [
            event
            for event in batch
            if (self.see_all or event["task__owner_id"] == self.user_id)
            and (self.task_id is None or event["task_id"] == self.task_id)
        ]
        if self.tasks is None or not chosen:
            return chosen
        ids = set(
            TaskEvent.objects.filter(
                pk__in=[event["id"] for event in chosen], task__in=self.tasks.values("pk")
            ).values_list("pk", flat=True)
        )
        return [event for event in chosen if event["id"] in ids]


Parcels = dict[asyncio.AbstractEventLoop, list[tuple[Inbox, Batch]]]


def _hand_over(loop: asyncio.AbstractEventLoop, parcels: list[tuple[Inbox, Batch]]) -> None:
    """Put each batch in its inbox, on the loop's own thread, in one call across threads: a
    thousand streams on one loop wake it once per read, not a thousand times.

    They are woken ``WAKE_SLICE`` at a time, ``STREAM_WAKE_PAUSE_SECONDS`` apart, rather than
    all in one turn of the loop: a request the same process serves runs its view on a thread,
    which needs the GIL back after each of its queries, and a stream's write (a socket send)
    holds it for about 50 us. Five hundred streams written in one go held it for 25-40 ms at a
    time; the list's p95 beside 1,000 streams went from 2.2x its p95 without them to 1.7-1.8x
    (bench/live.py).
    """

    pause = float(settings.TASKCENTER["STREAM_WAKE_PAUSE_SECONDS"])

    def put_slice(start: int) -> None:
        for inbox, batch in parcels[start : start + WAKE_SLICE]:
            inbox.put(batch)
        if start + WAKE_SLICE < len(parcels):
            loop.call_later(pause, put_slice, start + WAKE_SLICE)

    with contextlib.suppress(RuntimeError):  # the loop is closed: its streams are gone
        loop.call_soon_threadsafe(put_slice, 0)


class EventListener(PostgresListener):
    """``LISTEN taskcenter_events``; every notification makes the feed read."""

    APPLICATION_NAME = "taskcenter-event-streams"

    def open(self) -> None:
        import psycopg

        self.connection = psycopg.connect(**self.params)
        self.connection.execute(f"LISTEN {CHANNEL}")

    def listen(self) -> None:
        checked = time.monotonic()
        while not self.stopped.is_set():
            heard = False
            for _note in self.connection.notifies(timeout=0.5, stop_after=1):
                heard = True
            if heard:
                self.on_change()
            if time.monotonic() - checked >= 10.0:
                self.connection.execute("SELECT 1")  # raises on a dead link
                checked = time.monotonic()


class EventFeed:
    """The process's reader of the events table; started by the first subscription."""

    def __init__(self, using: str = "default") -> None:
        self.using = using
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._subscriptions: list[Subscription] = []
        self._thread: threading.Thread | None = None
        self._listener: EventListener | None = None
        self.cursor: int | None = None
        # Holes below the cursor: (first id, last id, monotonic time first seen).
        self.gaps: list[tuple[int, int, float]] = []

    # -- the streams' side (any thread) -------------------------------------------------------

    def subscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions.append(subscription)
            self._start()
        self._wake.set()

    def unsubscribe(self, subscription: Subscription) -> None:
        subscription.closed = True
        with self._lock, contextlib.suppress(ValueError):
            self._subscriptions.remove(subscription)

    def taken(self, subscription: Subscription, batches: int = 1) -> None:
        """The stream took ``batches`` off its queue."""
        subscription.pending = max(subscription.pending - batches, 0)

    def _start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._run, name="taskcenter-event-feed", daemon=True)
        self._thread.start()
        if connections[self.using].vendor == "postgresql" and self._listener is None:
            params = connections[self.using].get_connection_params()
            self._listener = EventListener(params, lambda _a: None, self._wake.set)
            self._listener.start()

    # -- the feed's thread --------------------------------------------------------------------

    def _interval(self) -> float:
        heartbeat = float(settings.TASKCENTER["STREAM_HEARTBEAT_SECONDS"]) / 2
        if connections[self.using].vendor == "sqlite":
            return min(SQLITE_POLL_SECONDS, heartbeat)
        listening = self._listener is not None and self._listener.listening
        return min(SAFETY_READ_SECONDS if listening else SQLITE_POLL_SECONDS, heartbeat)

    def _run(self) -> None:
        read_at = 0.0
        gap_per_stream = float(settings.TASKCENTER["STREAM_READ_GAP_PER_STREAM_SECONDS"])
        while True:
            self._wake.wait(self._interval())
            with self._lock:
                idle = not self._subscriptions
                gap = min(MAX_READ_GAP, gap_per_stream * len(self._subscriptions))
                if idle:
                    # Nobody to read for: forget the cursor (a new stream starts it again from
                    # the newest event) and sleep until a stream opens (cleared under the lock,
                    # so the set of a ``subscribe`` that comes after is not lost).
                    self.cursor = None
                    self.gaps = []
                    self._wake.clear()
            if idle:
                self._wake.wait()
                continue
            # What arrives meanwhile is read with the rest (see the module's docstring).
            time.sleep(max(0.0, read_at + gap - time.monotonic()))
            self._wake.clear()
            read_at = time.monotonic()
            self.keep_alive(read_at)
            try:
                self.read()
            except DATABASE_ERRORS as exc:
                logger.warning("Event streams: could not read the events table (%s)", exc)
                connection.close()
                time.sleep(OUTAGE_DELAY_SECONDS)
            except Exception:
                logger.exception("Event streams: reading the events table failed")
                time.sleep(OUTAGE_DELAY_SECONDS)

    def _events(self) -> QuerySet[TaskEvent]:
        return TaskEvent.objects.using(self.using).order_by("id")

    def read(self) -> None:
        """Read what is new (and what filled a hole) and hand it to the subscriptions."""
        with self._lock:
            subscriptions = list(self._subscriptions)
        if self.cursor is None:
            newest = self._events().order_by("-id").values_list("id", flat=True).first()
            self.cursor = newest or 0
        for subscription in subscriptions:
            if not subscription.replayed:
                self._replay(subscription)
        batch = self._read_new()
        if not batch:
            return
        selections: dict[tuple, list[Event]] = {}
        parcels: Parcels = {}
        for subscription in subscriptions:
            if subscription.closed:
                continue
            key = subscription.same_selection()
            if key in selections:
                chosen = selections[key]
            else:
                chosen = selections[key] = subscription.select(batch)
            if chosen:
                self._deliver(subscription, chosen, parcels)
        for loop, loop_parcels in parcels.items():
            _hand_over(loop, loop_parcels)

    def keep_alive(self, now: float) -> None:
        """An empty batch to each stream that was handed nothing for the heartbeat's length."""
        heartbeat = float(settings.TASKCENTER["STREAM_HEARTBEAT_SECONDS"])
        with self._lock:
            quiet = [s for s in self._subscriptions if now - s.sent_at >= heartbeat]
        parcels: Parcels = {}
        for subscription in quiet:
            if not subscription.closed:
                self._deliver(subscription, [], parcels)
        for loop, loop_parcels in parcels.items():
            _hand_over(loop, loop_parcels)

    def _read_new(self) -> list[Event]:
        now = time.monotonic()
        self.gaps = [gap for gap in self.gaps if now - gap[2] < GAP_PATIENCE_SECONDS]
        found: list[Event] = []
        if self.gaps:
            holes = Q()
            for first, last, _seen in self.gaps:
                holes |= Q(id__range=(first, last))
            late = list(self._events().filter(holes).values(*EVENT_FIELDS)[:PAGE])
            for event in late:
                self._fill(event["id"])
            found.extend(late)
        assert self.cursor is not None
        while True:
            page = list(self._events().filter(id__gt=self.cursor).values(*EVENT_FIELDS)[:PAGE])
            for event in page:
                if event["id"] > self.cursor + 1:
                    self.gaps.append((self.cursor + 1, event["id"] - 1, now))
                self.cursor = event["id"]
            found.extend(page)
            if len(page) < PAGE:
                return found

    def _fill(self, event_id: int) -> None:
        gaps = []
        for first, last, seen in self.gaps:
            if first <= event_id <= last:
                if first < event_id:
                    gaps.append((first, event_id - 1, seen))
                if event_id < last:
                    gaps.append((event_id + 1, last, seen))
            else:
                gaps.append((first, last, seen))
        self.gaps = gaps

    def _replay(self, subscription: Subscription) -> None:
        """Events after the stream's Last-Event-ID, up to the feed's cursor, a page a time."""
        assert self.cursor is not None
        if subscription.after is None or subscription.after >= self.cursor:
            subscription.replayed = True
            return
        events = subscription.visible().order_by("id")
        page = list(
            events.filter(id__gt=subscription.after, id__lte=self.cursor).values(*EVENT_FIELDS)[
                :PAGE
            ]
        )
        if page:
            subscription.after = page[-1]["id"]
            self._deliver(subscription, page)
        if len(page) < PAGE:
            subscription.replayed = True
        else:
            self._wake.set()  # more to replay: the next round, after the live ones of this one

    def _deliver(
        self, subscription: Subscription, events: list[Event], parcels: Parcels | None = None
    ) -> None:
        """Hand ``events`` to the stream: now, or with its loop's others (``parcels``)."""
        batch: Batch = events
        subscription.sent_at = time.monotonic()
        if subscription.pending >= MAX_PENDING_BATCHES:
            self.unsubscribe(subscription)
            batch = None
        else:
            subscription.pending += 1
        inbox = subscription.inbox
        if inbox is None:
            subscription.deliver(batch)
        elif parcels is None:
            _hand_over(inbox.loop, [(inbox, batch)])
        else:
            parcels.setdefault(inbox.loop, []).append((inbox, batch))


_feeds: dict[str, EventFeed] = {}
_feeds_lock = threading.Lock()


def feed(using: str = "default") -> EventFeed:
    """This process's feed of database ``using``."""
    with _feeds_lock:
        if using not in _feeds:
            _feeds[using] = EventFeed(using)
        return _feeds[using]
