"""A small real HTTP server on loopback for tests of kinds that speak HTTP."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class _Handler(BaseHTTPRequestHandler):
    server: TestHTTPServer

    def log_message(self, format, *args):  # quiet: tests read server.hits instead
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _route(self) -> None:
        self.server.hits.append((self.command, self.path))
        parts = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if parts.path == "/ok":
            payload = json.dumps({"hello": "world"}).encode()
            self._send(200, payload, {"Content-Type": "application/json", "X-Test": "yes"})
        elif parts.path == "/big":
            self._send(200, b"x" * int(query.get("bytes", 200_000)), {"Content-Type": "text/plain"})
        elif parts.path.startswith("/status/"):
            status = int(parts.path.rsplit("/", 1)[1])
            headers = {"Retry-After": query["retry_after"]} if "retry_after" in query else {}
            self._send(status, f"status {status}".encode(), headers)
        elif parts.path == "/slow":
            time.sleep(float(query.get("s", 1)))
            self._send(200, b"slow")
        elif parts.path == "/redirect":
            self._send(302, b"", {"Location": query.get("to", "/ok")})
        elif parts.path == "/echo":
            echo = {"method": self.command, "body": body.decode(), "headers": dict(self.headers)}
            self._send(200, json.dumps(echo).encode(), {"Content-Type": "application/json"})
        else:
            self._send(404, b"not found")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _route


class TestHTTPServer(ThreadingHTTPServer):
    """Serves on ``host:port`` (port 0: any free one); with ``tls``, over HTTPS, logging the
    SNI name each handshake asked for in ``sni``."""

    __test__ = False
    daemon_threads = True

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, tls: ssl.SSLContext | None = None
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), _Handler)
        self.hits: list[tuple[str, str]] = []
        self.sni: list[str | None] = []
        self.tls = tls
        if tls is not None:
            tls.sni_callback = lambda sock, name, ctx: self.sni.append(name)
        # A short poll interval: shutdown() waits up to one, and the SSRF tests stop three
        # servers after each of some seventy tests (0.05 s cost them seven seconds).
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def get_request(self):
        conn, address = super().get_request()
        if self.tls is not None:
            conn = self.tls.wrap_socket(conn, server_side=True)
        return conn, address

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        host = self.server_address[0]
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def __enter__(self) -> TestHTTPServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()
