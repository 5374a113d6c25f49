"""A Server-Sent Events client that sends what a browser's ``EventSource`` sends and reads the
stream as it does: ``data:`` lines joined into one message per blank line, comments skipped."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from urllib.parse import urlencode, urlsplit


class EventStream:
    """One ``GET`` of an event stream over a real socket; ``close()`` is the page going away."""

    def __init__(
        self,
        base_url: str,
        path: str,
        query: dict[str, str],
        *,
        headers: dict[str, str] | None = None,
        timeout: float = 15.0,
    ) -> None:
        parts = urlsplit(base_url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        # What a page's EventSource sends on a first connection (no Last-Event-ID): no
        # Authorization, and the browser's own Fetch Metadata of a same-origin stream.
        sent = {
            "Accept": "text/event-stream",
            "Cache-Control": "no-cache",
            "Sec-Fetch-Site": "same-origin",
            "Sec-Fetch-Mode": "cors",
            "Sec-Fetch-Dest": "empty",
            **(headers or {}),
        }
        self.connection.request("GET", f"{path}?{urlencode(query)}", headers=sent)
        self.response = self.connection.getresponse()
        self.comments: list[str] = []

    @property
    def status(self) -> int:
        return self.response.status

    def header(self, name: str) -> str | None:
        return self.response.getheader(name)

    def messages(self) -> Iterator[str]:
        """Each message's data, as ``event.data`` shows it, until the server ends the stream."""
        data: list[str] = []
        while True:
            raw = self.response.readline()
            if not raw:
                return
            line = raw.decode("utf-8").rstrip("\r\n")
            if not line:
                if data:
                    yield "\n".join(data)
                    data = []
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            field, _, value = line.partition(":")
            if field == "data":
                data.append(value[1:] if value.startswith(" ") else value)

    def wait_for_comment(self, text: str) -> None:
        """Read on until the server has sent the comment ``text`` (a message first is a failure).

        For a test that must act only once the server is waiting, not before it has started to.
        """
        while text not in self.comments:
            raw = self.response.readline()
            assert raw, f"the stream ended before the comment {text!r}"
            line = raw.decode("utf-8").rstrip("\r\n")
            if line.startswith("retry:"):
                continue  # the reconnection delay: a setting, not a message
            assert not line or line.startswith(":"), f"a message came before {text!r}: {line}"
            if line:
                self.comments.append(line[1:].strip())

    def body(self) -> bytes:
        """The rest of a response that is not a stream (an error envelope)."""
        return self.response.read()

    def close(self) -> None:
        # The response holds the socket once http.client has handed it over: close both.
        self.response.close()
        self.connection.close()


def session_cookie(client, settings) -> str:
    """The ``Cookie`` header of a Django test client's logged-in session."""
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
