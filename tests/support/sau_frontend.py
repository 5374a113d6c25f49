"""social-auto-upload's Vue front end (``sau_frontend/``), sending requests as its source does.

- The axios instance (``src/utils/request.js``) sends ``Content-Type: application/json`` on every
  request and ``Authorization: Bearer <localStorage.token>`` when there is a token;
  ``http.get(url)`` carries the query in the URL the page built, ``http.post(url, data)`` sends
  JSON, ``http.upload(url, formData)`` posts ``multipart/form-data`` (the browser adds the
  boundary). Success is ``data.code === 200 || data.success``.
- The publish center's ``el-upload`` posts with its own XHR: multipart field ``file`` and the
  header ``Authorization: Bearer <token or ''>``.
- Previews (``<video src>``), the material and cookie downloads (``<a href>``,
  ``window.open``) are plain browser requests: no Authorization header, cookies only.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from taskcenter.models.tokens import ApiToken


class SauFrontend:
    """The front end of one user: the API token from localStorage, and a browser session."""

    def __init__(self, user) -> None:
        _, self.token = ApiToken.objects.issue(user)
        # CSRF is checked as a real server checks it (Django's test client skips it by default).
        self.api = Client(enforce_csrf_checks=True)
        self.browser = Client(enforce_csrf_checks=True)  # the same person, logged in by session
        self.browser.force_login(user)

    def _headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"}

    def get(self, url: str) -> Any:
        """``http.get(url)``: the query is in ``url``, as the page wrote it."""
        return self.api.get(url, headers=self._headers())

    def post(self, url: str, data: Any) -> Any:
        """``http.post(url, data)``: a JSON body."""
        return self.api.generic(
            "POST", url, json.dumps(data), content_type="application/json", headers=self._headers()
        )

    def upload(self, url: str, fields: dict[str, Any]) -> Any:
        """``http.upload(url, formData)``: ``FormData`` fields (files as ``SimpleUploadedFile``)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        return self.api.post(url, fields, headers=headers)  # multipart/form-data

    def el_upload(self, url: str, file: SimpleUploadedFile) -> Any:
        """The publish center's ``el-upload``: its XHR, field ``file``, the bearer header."""
        return self.api.post(url, {"file": file}, headers={"Authorization": f"Bearer {self.token}"})

    def link(self, url: str, **headers: str) -> Any:
        """A ``<video src>``, ``<a href>`` or ``window.open``: the browser's own request."""
        return self.browser.get(url, headers=headers)
