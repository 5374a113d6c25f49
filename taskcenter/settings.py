"""Task Center settings, read from the environment (twelve-factor).

Every knob has a default that runs the whole service on one machine with SQLite; production
overrides them with environment variables. Test settings (``taskcenter.test_settings``) import
this module and change only what tests need.
"""

import ipaddress
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypedDict

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("TASKCENTER_VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true/false)")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from exc


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number") from exc


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_header(name: str, default: str) -> str:
    """An HTTP request header named as clients send it (``X-XSRF-TOKEN``) or as Django's
    ``request.META`` keys it (``HTTP_X_XSRF_TOKEN``), returned as the ``META`` key."""
    raw = os.environ.get(name) or default
    if raw.upper().startswith("HTTP_"):
        return raw.upper()
    return "HTTP_" + raw.upper().replace("-", "_")


def env_networks(name: str, default: str = "") -> list[str]:
    """A comma-separated list of IP networks (``10.0.5.0/24``, ``fd00::/8``), checked now."""
    networks = env_list(name, default)
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{name}: {exc}") from exc
    return networks


# Everything the service writes (the SQLite database and the -wal/-shm files SQLite makes next
# to it, keys, uploaded videos) is for its own user only. SQLite creates its files with the
# process umask, so it is set here, before anything is opened; every entry point (manage.py,
# gunicorn's workers, run_worker) imports these settings first.
try:
    UMASK = int(env_str("TASKCENTER_UMASK", "077"), 8)
except ValueError as exc:
    raise ImproperlyConfigured("TASKCENTER_UMASK must be octal, e.g. 077") from exc
os.umask(UMASK)


def var_dir() -> Path:
    """``VAR_DIR``, created 0700 (and narrowed to 0700 if an older version left it wider)."""
    VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    if VAR_DIR.stat().st_uid == os.getuid() and VAR_DIR.stat().st_mode & 0o077:
        VAR_DIR.chmod(0o700)
    return VAR_DIR


def var_secret(name: str, make: Callable[[], str]) -> str:
    """A per-installation secret kept in ``VAR_DIR/<name>`` (0600), made on first use."""
    path = var_dir() / name
    if not path.exists():
        # O_EXCL: two processes starting at once keep one secret, not one each.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as file:
                file.write(make())
    return path.read_text().strip()


DEBUG = env_bool("DEBUG", default=False)
# System checks to keep quiet, e.g. "taskcenter.W001,taskcenter.W002" for a demo that runs against
# the sandbox platform on purpose (``make run`` does).
SILENCED_SYSTEM_CHECKS = env_list("SILENCED_SYSTEM_CHECKS")
# Production refuses to start on the per-installation secrets kept in VAR_DIR.
REQUIRE_SECRETS = not DEBUG and env_bool("TASKCENTER_REQUIRE_SECRET_KEY", default=False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if REQUIRE_SECRETS:
        raise ImproperlyConfigured("SECRET_KEY must be set in production")
    from django.core.management.utils import get_random_secret_key

    # A per-checkout key, so the embedded default never ships a known secret.
    SECRET_KEY = var_secret("secret_key", get_random_secret_key)

# Fernet keys that encrypt platform credentials at rest, newest first: the first encrypts, all
# decrypt (taskcenter.lib.encryption). Without the variable, a key made once in VAR_DIR.
CREDENTIALS_KEYS = env_list("TASKCENTER_CREDENTIALS_KEYS")
if not CREDENTIALS_KEYS:
    if REQUIRE_SECRETS:
        raise ImproperlyConfigured("TASKCENTER_CREDENTIALS_KEYS must be set in production")
    from cryptography.fernet import Fernet

    CREDENTIALS_KEYS = [var_secret("credentials_key", lambda: Fernet.generate_key().decode())]

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc served from our static files, no CDN
    "django_tasks",
    "django_tasks_db",
    "axes",
    # The core first; the apps built on it import it and plug into its registries.
    "taskcenter.apps.TaskCenterConfig",
    "quota.apps.QuotaConfig",
    "scraping.apps.ScrapingConfig",
    "publishing.apps.PublishingConfig",
    "syncing.apps.SyncingConfig",
    "generation.apps.GenerationConfig",
    "integration.apps.IntegrationConfig",
    "sandbox.apps.SandboxConfig",
]

MIDDLEWARE = [
    "taskcenter.api.middleware.DrainUnreadBodyMiddleware",
    # Probes and scrapes are answered before any redirect, host check or login, and every
    # other request is timed from here.
    "taskcenter.monitoring.middleware.MonitoringEndpointsMiddleware",
    "taskcenter.monitoring.middleware.HttpMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "taskcenter.api.middleware.RequestSizeLimitMiddleware",
    "taskcenter.api.middleware.DatabaseUnavailableMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Django's LocaleMiddleware, for the admin and HTML pages only: API bodies stay English.
    "taskcenter.lib.operator_locale.OperatorLocaleMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "taskcenter.urls"
WSGI_APPLICATION = "taskcenter.wsgi.application"
ASGI_APPLICATION = "taskcenter.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------
# SQLite is the embedded default. WAL lets the web process read while the worker writes;
# IMMEDIATE transactions take the write lock at BEGIN, so two writers queue on the busy
# timeout instead of one failing with "database is locked" when it upgrades a read lock.
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'taskcenter.sqlite3'}")
DATABASES = {
    # Health checks: a persistent connection is tested before each request (or worker round)
    # reuses it, so one that a database restart broke is replaced instead of failing the call.
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=env_bool("DB_CONN_HEALTH_CHECKS", True),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django's backend, with a write lock taken by a spin instead of SQLite's 1-25 ms sleeps.
    DATABASES["default"]["ENGINE"] = "taskcenter.lib.sqlite_engine"
    var_dir()
    DATABASES["default"]["CONN_MAX_AGE"] = None  # one connection per thread, kept open
    DATABASES["default"]["OPTIONS"] = {
        "timeout": env_float("SQLITE_BUSY_TIMEOUT", 30.0),
        "transaction_mode": "IMMEDIATE",
        "init_command": (
            "PRAGMA journal_mode=WAL;"
            "PRAGMA synchronous=NORMAL;"
            "PRAGMA foreign_keys=ON;"
            "PRAGMA cache_size=-32000;"
            # Temporary storage in memory: with it on disk, SQLite created, unlinked and closed a
            # file in /var/tmp for every task INSERT (its statement journal: the INSERT writes
            # through the tally trigger), 8 system calls and 0.18 ms of a 0.9 ms create_task.
            # Queries here sort with an index or a LIMIT; a large unindexed sort uses memory.
            "PRAGMA temp_store=MEMORY;"
            # Checkpoints are the workers' (lib.sqlite_engine.checkpoints); a commit runs one
            # only past this many log pages, when no worker has for a while. A log that grew
            # is cut back to 64 MB when it starts over.
            f"PRAGMA wal_autocheckpoint={env_int('SQLITE_WAL_AUTOCHECKPOINT', 10_000):d};"
            "PRAGMA journal_size_limit=67108864;"
        ),
    }
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test_taskcenter.sqlite3")}
# ``create_task``'s one statement (``lifecycle.single_statement``) is sent as a prepared statement
# from its first use on a connection; nothing else is (the ORM binds its values on the client).
# Turn off behind a pooler that cannot keep them (PgBouncer before 1.21 in transaction mode).
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool(
    "DB_PREPARED_STATEMENTS", True
):
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 0)
# Under ASGI (taskcenter.asgi sets this) every request runs on a thread of its own, so a
# connection kept for reuse is never reused: each would stay open until garbage-collected
# (dozens of idle PostgreSQL sessions after a burst of requests). Close it as a request ends.
# Instead each process keeps a pool: the next request's thread takes a connection already
# open. PostgreSQL's is Django's own (psycopg_pool; connections checked before each use, so a
# database restart costs no request), which also bounds the sessions a process opens: a burst
# of 1,000 event streams connecting at once opened one session each and ran the server out
# of connections. SQLite's connections go back to a queue (``taskcenter.lib.sqlite_engine``).
if os.environ.get("TASKCENTER_ASGI") == "1":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    if DATABASES["default"]["ENGINE"] == "taskcenter.lib.sqlite_engine":
        DATABASES["default"]["OPTIONS"]["pool_size"] = env_int("SQLITE_POOL_SIZE", 8)
    elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": env_int("DB_POOL_MAX_SIZE", 10),
            # A request waits this long for a free connection, then is a 503 (database busy).
            "timeout": env_float("DB_POOL_TIMEOUT", 10.0),
        }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Task dispatch (django_tasks) ----------------------------------------------------------
# "database": jobs in this database (django-tasks-db), claimed by `run_worker`. "rq": jobs in
# Redis (django-tasks-rq), run by `run_worker` as an RQ worker; Task Center's own tables stay
# the truth either way, the engine only carries "run an attempt of task N" messages.
TASKS_BACKEND = env_str("TASKS_BACKEND", "database")
REDIS_URL = env_str("REDIS_URL")


def rq_queue(url: str) -> dict[str, Any]:
    """django-rq's settings for a queue at ``url``, on one connection pool per process.

    Given a URL, django-rq builds a new client for every enqueue: a new connection and its
    handshake, about 5 ms between a task's commit and its job reaching an idle worker. Given a
    host, it passes ``REDIS_CLIENT_KWARGS`` on, and with them this pool.
    """
    from urllib.parse import urlsplit

    import redis

    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        return {"URL": url, "DEFAULT_TIMEOUT": -1}
    return {
        # What django-rq's own tools (rqstats, rqworker) connect with; the pool wins otherwise.
        "HOST": parts.hostname or "localhost",
        "PORT": parts.port or 6379,
        "DB": int(parts.path.strip("/") or 0),
        "USERNAME": parts.username,
        "PASSWORD": parts.password,
        "SSL": parts.scheme == "rediss",
        "DEFAULT_TIMEOUT": -1,
        "REDIS_CLIENT_KWARGS": {"connection_pool": redis.ConnectionPool.from_url(url)},
    }


if TASKS_BACKEND == "database":
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
elif TASKS_BACKEND == "rq":
    if not REDIS_URL:
        raise ImproperlyConfigured("TASKS_BACKEND=rq needs REDIS_URL (redis://host:6379/0)")
    INSTALLED_APPS.append("django_rq")
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
    RQ_QUEUES = {"default": rq_queue(REDIS_URL)}
else:
    raise ImproperlyConfigured(
        f"TASKS_BACKEND={TASKS_BACKEND!r} is not supported (use 'database' or 'rq')"
    )

# --- Shared cache ------------------------------------------------------------------------
# One cache for every process on every machine, so rate limits hold however many web processes
# serve: Redis when REDIS_URL is set, else a table in the database (made by a migration), written
# by Django's database cache with a one-statement set (taskcenter/lib/database_cache.py).
CACHES: dict[str, dict[str, Any]]
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "taskcenter",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "taskcenter.lib.database_cache.DatabaseCache",
            "LOCATION": "taskcenter_cache",
            # Past this many rows the cache drops expired ones, then a third of the rest; a
            # dropped rate-limit history is a client's count starting over, so keep room for
            # every client of a minute. Not more: each write counts the table's rows.
            "OPTIONS": {"MAX_ENTRIES": env_int("CACHE_MAX_ENTRIES", 10_000)},
        }
    }


# --- Task Center ---------------------------------------------------------------------------
# Each settings dict below has its shape written down, so mypy checks every key a module reads.
class TaskCenterSettings(TypedDict):
    LEASE_SECONDS: float
    MAX_LOST_ATTEMPTS: int
    ORPHAN_AFTER_SECONDS: float
    HTTP_ALLOW_PRIVATE_ADDRESSES: bool
    HTTP_ALLOWED_NETWORKS: list[str]
    HTTP_MAX_BODY_BYTES: int
    HTTP_MAX_TIMEOUT_SECONDS: float
    KIND_MODULES: list[str]
    INTEGRATION_KIND: str
    ASYNC_SUBMIT: bool
    IDEMPOTENCY_KEY_TTL_SECONDS: float
    QUOTA_DEFAULT_BALANCE: int
    DEMO_KINDS: bool
    ACCOUNT_COOLDOWN_MAX_SECONDS: float
    WAKEUPS: bool
    WORKER_RETENTION_SECONDS: float
    STREAM_HEARTBEAT_SECONDS: float
    STREAM_READ_GAP_PER_STREAM_SECONDS: float
    STREAM_WAKE_PAUSE_SECONDS: float


TASKCENTER: TaskCenterSettings = {
    # How long a claimed attempt may go without a heartbeat before the reaper calls it LOST.
    "LEASE_SECONDS": env_float("TASKCENTER_LEASE_SECONDS", 60.0),
    # How many times a task's worker may vanish mid-attempt (SIGKILL, OOM, a lost machine)
    # before the task fails instead of being requeued; a kind may set its own limit.
    "MAX_LOST_ATTEMPTS": env_int("TASKCENTER_MAX_LOST_ATTEMPTS", 3),
    # A QUEUED task whose engine job vanished (queue flushed, job pruned) is dispatched again
    # once it has waited this long past its run_after.
    "ORPHAN_AFTER_SECONDS": env_float("TASKCENTER_ORPHAN_AFTER_SECONDS", 300.0),
    # SSRF guard of the http.request kind: loopback, private and link-local targets are
    # refused unless this is on (tests and local demos).
    "HTTP_ALLOW_PRIVATE_ADDRESSES": env_bool("TASKCENTER_HTTP_ALLOW_PRIVATE", default=False),
    # Internal networks (CIDR) http.request may call while the rest stay refused, e.g. one
    # service at 10.0.5.7/32.
    "HTTP_ALLOWED_NETWORKS": env_networks("TASKCENTER_HTTP_ALLOWED_NETWORKS"),
    "HTTP_MAX_BODY_BYTES": env_int("TASKCENTER_HTTP_MAX_BODY_BYTES", 64 * 1024),
    "HTTP_MAX_TIMEOUT_SECONDS": env_float("TASKCENTER_HTTP_MAX_TIMEOUT", 60.0),
    # Modules whose import registers task kinds (each app's ``task_kinds`` is found anyway).
    "KIND_MODULES": env_list("TASKCENTER_KIND_MODULES"),
    # What an integration tasks table row runs when it names no task_type (the table has no
    # such column). Unset: such a row is refused with a 400 naming task_type.
    "INTEGRATION_KIND": env_str("TASKCENTER_INTEGRATION_KIND", ""),
    # PostgreSQL: on, a submission (create_task, create_tasks, the batch route) commits without
    # waiting for its WAL to reach the disk. A flush costs milliseconds, most of a submission;
    # the price is that a crash of the database server may lose the submissions of its last
    # moments (up to three wal_writer_delay), whole, although their clients were answered.
    # Off by default: an answered submission is on disk. What workers write stays durable.
    "ASYNC_SUBMIT": env_bool("TASKCENTER_ASYNC_SUBMIT", default=False),
    # How long an Idempotency-Key on POST /api/v1/tasks replays its task; after that the key
    # may be used again for a new task (a client retries within minutes, not days).
    "IDEMPOTENCY_KEY_TTL_SECONDS": env_float("TASKCENTER_IDEMPOTENCY_KEY_TTL", 86_400.0),
    # Quota a user's account opens with (created on first use); priced tasks cost from it.
    "QUOTA_DEFAULT_BALANCE": env_int("TASKCENTER_QUOTA_DEFAULT_BALANCE", 0),
    # The demo.* kinds (sleep, countdown, account, ...) exist to show the lifecycle; they let any
    # user hold a worker slot or an account for minutes, so production leaves them unknown.
    # `make run` turns them on; DEBUG does too.
    "DEMO_KINDS": env_bool("TASKCENTER_DEMO_KINDS", default=DEBUG),
    # The longest rest any platform account may be given between two tasks.
    "ACCOUNT_COOLDOWN_MAX_SECONDS": env_float("TASKCENTER_ACCOUNT_COOLDOWN_MAX", 86_400.0),
    # Ready jobs are announced to idle workers (PostgreSQL LISTEN/NOTIFY, a local socket per
    # worker on SQLite), which then start them within milliseconds and poll only as a safety
    # net. Off: workers find jobs by polling every --interval alone.
    "WAKEUPS": env_bool("TASKCENTER_WAKEUPS", default=True),
    # How long the worker registry keeps the rows of workers that stopped or died (the reaper
    # prunes older ones): long enough to look into last week's crashes.
    "WORKER_RETENTION_SECONDS": env_float("TASKCENTER_WORKER_RETENTION", 7 * 86_400.0),
    # An open event stream sends a comment this often, so proxies and clients see it alive.
    "STREAM_HEARTBEAT_SECONDS": env_float("TASKCENTER_STREAM_HEARTBEAT_SECONDS", 15.0),
    # The event feed's pace (taskcenter.api.event_feed): the least time between two reads of
    # the events, per open stream (1 s at most), and the pause between two groups of streams
    # woken after a read. Slower leaves more of the process to the requests it serves beside its
    # streams; the stream server, which serves little else, runs faster (taskcenter.stream_server).
    "STREAM_READ_GAP_PER_STREAM_SECONDS": env_float(
        "TASKCENTER_STREAM_READ_GAP_PER_STREAM_SECONDS", 0.001
    ),
    "STREAM_WAKE_PAUSE_SECONDS": env_float("TASKCENTER_STREAM_WAKE_PAUSE_SECONDS", 0.004),
}


def bounded_cooldown(name: str, default: float) -> float:
    """An operator's account cooldown, refused at start-up when outside 0..the maximum."""
    value = env_float(name, default)
    limit = TASKCENTER["ACCOUNT_COOLDOWN_MAX_SECONDS"]
    if not 0 <= value <= limit:
        raise ImproperlyConfigured(f"{name}={value:g} must be between 0 and {limit:g} seconds")
    return value


# --- Scraping -----------------------------------------------------------------------------
# The platform the scrape kinds talk to. The default is the sandbox platform
# (``manage.py run_sandbox_platform``); the base URL is operator-configured, so the provider
# does not apply http.request's SSRF guard to it.
class ScrapingSettings(TypedDict):
    PROVIDER: str
    BASE_URL: str
    TOKEN: str
    TIMEOUT: float
    SOURCE: str
    ACCOUNT_WAIT: float
    ACCOUNT_COOLDOWN: float


SCRAPING: ScrapingSettings = {
    "PROVIDER": env_str("SCRAPING_PROVIDER", "scraping.providers.HttpProvider"),
    "BASE_URL": env_str("SCRAPING_BASE_URL", "http://127.0.0.1:8900"),
    "TOKEN": env_str("SCRAPING_TOKEN", "sandbox-token"),
    "TIMEOUT": env_float("SCRAPING_TIMEOUT", 15.0),
    # Recorded as each result's metadata["source"].
    "SOURCE": env_str("SCRAPING_SOURCE", "sandbox"),
    # A task whose account is busy with another task looks again after this many seconds
    # (without holding a worker); an account rests this long between two tasks.
    "ACCOUNT_WAIT": env_float("SCRAPING_ACCOUNT_WAIT", 5.0),
    "ACCOUNT_COOLDOWN": bounded_cooldown("SCRAPING_ACCOUNT_COOLDOWN", 0.0),
}


# --- The data sync service ------------------------------------------------------------------
# The data-source API the sync kinds read (the sandbox platform plays it).
class SyncingSettings(TypedDict):
    BASE_URL: str
    TOKEN: str
    PAGE_TIMEOUT: float


SYNCING: SyncingSettings = {
    "BASE_URL": env_str("SYNC_SOURCE_BASE_URL", "http://127.0.0.1:8900"),
    "TOKEN": env_str("SYNC_SOURCE_TOKEN", "sandbox-token"),
    # The longest one page request may take; a task's own `timeout` may cut it shorter.
    "PAGE_TIMEOUT": env_float("SYNC_PAGE_TIMEOUT", 30.0),
}


# --- Publishing (social-auto-upload) ----------------------------------------------------------
# Uploaded videos live under MEDIA_ROOT; the publish kind talks to the platform at BASE_URL
# (the sandbox platform by default, ``manage.py run_sandbox_platform``).
class PublishingSettings(TypedDict):
    MEDIA_ROOT: Path
    MAX_UPLOAD_BYTES: int
    ALLOWED_CONTENT_TYPES: list[str]
    ACCOUNT_COOLDOWN_SECONDS: float
    PROVIDER: str
    BASE_URL: str
    TOKEN: str
    TIMEOUT: float
    POLL_SECONDS: float
    RETRY_BASE_SECONDS: float
    LOGIN_TIMEOUT_SECONDS: float
    LOGIN_POLL_SECONDS: float


PUBLISHING: PublishingSettings = {
    "MEDIA_ROOT": Path(env_str("PUBLISHING_MEDIA_ROOT", str(VAR_DIR / "videos"))),
    "MAX_UPLOAD_BYTES": env_int("PUBLISHING_MAX_UPLOAD_BYTES", 500 * 1024 * 1024),
    "ALLOWED_CONTENT_TYPES": env_list(
        "PUBLISHING_ALLOWED_CONTENT_TYPES", "video/mp4,video/quicktime,video/webm,video/x-matroska"
    ),
    # One account publishes one video at a time, and waits this long after each publish.
    "ACCOUNT_COOLDOWN_SECONDS": bounded_cooldown("PUBLISHING_ACCOUNT_COOLDOWN_SECONDS", 30.0),
    "PROVIDER": env_str("PUBLISHING_PROVIDER", "publishing.providers.HttpProvider"),
    "BASE_URL": env_str("PUBLISHING_BASE_URL", "http://127.0.0.1:8900"),
    "TOKEN": env_str("PUBLISHING_TOKEN", "sandbox-token"),
    "TIMEOUT": env_float("PUBLISHING_TIMEOUT", 60.0),
    # How often a video the platform is still processing is checked (no worker waits meanwhile).
    "POLL_SECONDS": env_float("PUBLISHING_POLL_SECONDS", 10.0),
    # First back-off after a retryable failure (an upload error, a platform outage).
    "RETRY_BASE_SECONDS": env_float("PUBLISHING_RETRY_BASE_SECONDS", 10.0),
    # The account login stream (GET /login): how long it waits for the person to scan the QR
    # code (it holds a web thread meanwhile) and how often it asks the platform.
    "LOGIN_TIMEOUT_SECONDS": env_float("PUBLISHING_LOGIN_TIMEOUT_SECONDS", 180.0),
    "LOGIN_POLL_SECONDS": env_float("PUBLISHING_LOGIN_POLL_SECONDS", 1.0),
}


# --- AI generation (new-api's task center) -------------------------------------------------
# The Suno-like platform the generation kinds talk to (default: the sandbox platform), how they
# poll it, and what each kind costs from the owner's quota.
class GenerationSettings(TypedDict):
    PROVIDER: str
    BASE_URL: str
    TOKEN: str
    TIMEOUT: float
    POLL_INITIAL_SECONDS: float
    POLL_MAX_SECONDS: float
    DEADLINE_SECONDS: float
    PRICES: dict[str, int]


GENERATION: GenerationSettings = {
    "PROVIDER": env_str("GENERATION_PROVIDER", "generation.providers.HttpProvider"),
    "BASE_URL": env_str("GENERATION_BASE_URL", "http://127.0.0.1:8900"),
    "TOKEN": env_str("GENERATION_TOKEN", "sandbox-token"),
    "TIMEOUT": env_float("GENERATION_TIMEOUT", 15.0),
    "POLL_INITIAL_SECONDS": env_float("GENERATION_POLL_INITIAL_SECONDS", 1.0),
    "POLL_MAX_SECONDS": env_float("GENERATION_POLL_MAX_SECONDS", 30.0),
    # A job the platform has not finished this long after submission fails (and is refunded).
    "DEADLINE_SECONDS": env_float("GENERATION_DEADLINE_SECONDS", 1800.0),
    "PRICES": {
        "song": env_int("GENERATION_PRICE_SONG", 10),
        "lyrics": env_int("GENERATION_PRICE_LYRICS", 2),
    },
}

# --- REST framework ------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Bearer/Token first: its WWW-Authenticate header makes DRF answer 401, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "taskcenter.api.authentication.BearerTokenAuthentication",
        "taskcenter.api.authentication.BrowserSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "taskcenter.api.pagination.PageSizePagination",
    # DRF's JSON, written by orjson (the same documents, a tenth of the time).
    "DEFAULT_RENDERER_CLASSES": [
        "taskcenter.api.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "taskcenter.api.parsers.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "taskcenter.api.exceptions.api_exception_handler",
    # Counted in the shared cache above, so they hold across processes and machines.
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("THROTTLE_ANON_RATE", "60/min"),
        "user": env_str("THROTTLE_USER_RATE", "1000/min"),
        # Wrong bearer tokens per client address (taskcenter.api.throttling.FailedTokenThrottle).
        "failed_auth": env_str("THROTTLE_FAILED_AUTH_RATE", "20/min"),
    },
    # Client addresses come from REMOTE_ADDR unless this many proxies of ours append to
    # X-Forwarded-For; DRF's default (None) would believe a client's own X-Forwarded-For.
    "NUM_PROXIES": env_int("TASKCENTER_NUM_PROXIES", 0),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Task Center API",
    "DESCRIPTION": (
        "Submit, run, watch and repair long jobs on third-party platforms. Authenticate with "
        "`Authorization: Bearer <token>` (`manage.py issue_token <username>`) or a session. "
        'Errors are `{"detail": ...}`; validation errors list `{loc, msg, type}` per field.'
    ),
    "VERSION": "1.0.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "taskcenter.api.schema.forbid_nul_in_strings",
        "taskcenter.api.schema.document_auth_errors",
        "taskcenter.api.schema.document_json_bodies",
    ],
    "ENUM_NAME_OVERRIDES": {
        "TaskStatusEnum": "taskcenter.models.Status",
        "ExecutionStatusEnum": "taskcenter.models.ExecutionStatus",
        "PlatformTypeEnum": "publishing.platforms.PlatformType",
    },
}

# Bodies above this are a JSON 413 on the API (taskcenter.api.middleware).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2_621_440)
# A body refused unread (a 413, a 401 before an upload) is read and thrown away after the answer,
# up to this many bytes, so the client reads its error instead of a reset connection.
REQUEST_DRAIN_MAX_BYTES = env_int("REQUEST_DRAIN_MAX_BYTES", 1024 * 1024 * 1024)

# The envelope of errors answered outside a view (404, 413, 500) by URL prefix, longest first
# (taskcenter.api.dialect_errors); None keeps Django's HTML pages, for people.
ERROR_ENVELOPES = {
    "/": "publishing.api.envelope.error_body",  # social-auto-upload's paths are at the root
    "/admin/": None,
    "/static/": None,
    "/api/": "taskcenter.api.dialect_errors.detail_body",
    "/api/task/": "generation.api.envelope.error_body",
    "/api/sync/": "taskcenter.api.envelope.failure",
    "/api/integration/": "taskcenter.api.envelope.failure",
}

# Browsers may call the API only from these origins; credentials never go with allow-all.
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
CORS_ALLOW_CREDENTIALS = env_bool("CORS_ALLOW_CREDENTIALS", default=False)
CORS_ALLOW_ALL_ORIGINS = env_bool("CORS_ALLOW_ALL_ORIGINS", default=False)
if CORS_ALLOW_ALL_ORIGINS and CORS_ALLOW_CREDENTIALS:
    raise ImproperlyConfigured("CORS_ALLOW_CREDENTIALS cannot be combined with allow-all origins")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# --- social-auto-upload's web frontend ----------------------------------------------------
# The dist/ folder of its `npm run build`, served at / on this origin to logged-in users
# (publishing.frontend); unset, / is not served. Its pages call the API with the session cookie.
SOCIAL_AUTO_UPLOAD_FRONTEND_DIR = env_str("SOCIAL_AUTO_UPLOAD_FRONTEND_DIR")
if (
    SOCIAL_AUTO_UPLOAD_FRONTEND_DIR
    and not Path(SOCIAL_AUTO_UPLOAD_FRONTEND_DIR, "index.html").is_file()
):
    raise ImproperlyConfigured(
        f"SOCIAL_AUTO_UPLOAD_FRONTEND_DIR={SOCIAL_AUTO_UPLOAD_FRONTEND_DIR!r} has no index.html "
        "(point it at the dist/ folder that `npm run build` wrote)"
    )
# Its HTTP client (axios) copies an XSRF-TOKEN cookie into an X-XSRF-TOKEN header, so those are
# the CSRF names while it is served; Django's defaults otherwise. The admin, the browsable API
# and Swagger UI read whichever names are set. The cookie stays readable by scripts (Django's
# default): the token is only useful to pages of this origin.
_SERVES_FRONTEND = bool(SOCIAL_AUTO_UPLOAD_FRONTEND_DIR)
CSRF_COOKIE_NAME = env_str("CSRF_COOKIE_NAME", "XSRF-TOKEN" if _SERVES_FRONTEND else "csrftoken")
CSRF_HEADER_NAME = env_header(
    "CSRF_HEADER_NAME", "X-XSRF-TOKEN" if _SERVES_FRONTEND else "X-CSRFToken"
)
# Where a page that needs a login sends a person: the plain login form (any active user; the
# admin's form takes staff only). Failed logins there are counted by django-axes too.
LOGIN_URL = "rest_framework:login"

# --- HTTPS ---------------------------------------------------------------------------------
# Off by default so `make run` works on plain http://localhost; TASKCENTER_HTTPS=true turns on
# every setting `manage.py check --deploy` asks for, each still overridable on its own.
HTTPS = env_bool("TASKCENTER_HTTPS", default=False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=HTTPS)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=HTTPS)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", default=HTTPS)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=HTTPS)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=HTTPS)
if env_bool("TASKCENTER_BEHIND_PROXY", default=False):
    # Only behind a proxy that sets this header itself; otherwise clients could forge it.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Monitoring (/metrics, /healthz, /readyz) ----------------------------------------------
# /metrics answers clients on these networks (CIDR, comma-separated; loopback by default, empty
# for none) and any client with `Authorization: Bearer <TASKCENTER_METRICS_TOKEN>`. The probes
# answer everyone: they say nothing but "ok" or which dependency is down.
TASKCENTER_METRICS_TOKEN = env_str("TASKCENTER_METRICS_TOKEN")
TASKCENTER_METRICS_ALLOW = env_networks("TASKCENTER_METRICS_ALLOW", "127.0.0.0/8,::1/128")

# --- Failed logins (django-axes) -----------------------------------------------------------
# Every login form (admin, browsable API) goes through these backends: after AXES_FAILURE_LIMIT
# wrong passwords for one username from one address, that pair is refused (429), even with the
# right password, for AXES_COOLOFF_MINUTES. `manage.py axes_reset` lifts every lockout.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_float("AXES_COOLOFF_MINUTES", 15.0))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Lockouts are listed and lifted with axes' commands (axes_list_attempts, axes_reset); its admin
# pages would add bulk actions outside the admin's permission checks.
AXES_ENABLE_ADMIN = False
# Its start-up banner would land in every management command's output (issue_token is piped).
AXES_VERBOSE = False

# --- Auth, i18n, static --------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
# The admin's languages; the switch in its header (Django's set_language at /i18n/setlang/)
# and then the browser's Accept-Language choose. Apps keep their catalogues in <app>/locale/;
# the project's templates/ in locale/.
LANGUAGES = [
    ("en", "English"),
    ("zh-hans", "简体中文"),
    ("ja", "日本語"),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # The engine logs every job start and finish at INFO; our worker logs attempts itself.
        "django_tasks": {"level": "WARNING"},
        "django_tasks_db": {"level": "WARNING"},
    },
}
