"""``manage.py run_sandbox_platform``: serve the sandbox twitter-like platform for the demo."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from sandbox.platform import SandboxPlatform


class Command(BaseCommand):
    help = (
        "Serve the sandbox platform (a deterministic twitter-like JSON API with fault switches "
        "at /_control and a request log at /_requests) until interrupted. The scrape kinds "
        "reach it through SCRAPING_BASE_URL. Example: run_sandbox_platform --port 8900"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Address to bind (loopback).")
        parser.add_argument("--port", type=int, default=8900)
        parser.add_argument(
            "--token",
            default=None,
            help="Bearer token the API requires (default: SCRAPING_TOKEN, 'sandbox-token').",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        token = options["token"] or settings.SCRAPING["TOKEN"]
        server = SandboxPlatform(options["host"], options["port"], token=token)
        self.stdout.write(f"Sandbox platform on {server.url} (Ctrl-C to stop)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
