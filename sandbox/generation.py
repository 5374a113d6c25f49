"""The AI-generation area of the sandbox platform (a Suno-like music service).

::

    POST /api/generate/<platform>/<action>   {"prompt": "...", "client_ref": "...", ...}
                                             -> {"task_id": "gen-..."}   (same client_ref, same id)
    GET  /api/generate/tasks/<task_id>       -> {"task_id", "status", "progress": "45%",
                                                 "fail_reason", "data", "client_ref",
                                                 "submit_time" (epoch seconds)}

A task advances one step per status request, deterministically:
SUBMITTED -> QUEUED -> IN_PROGRESS 30% -> IN_PROGRESS 60% -> IN_PROGRESS 90% -> SUCCESS. A
song's data is ``{"clips": [...]}``, two clips shaped as Suno's (``audio_url``, ``image_url``,
``title``, ``metadata.tags`` and ``metadata.duration`` ...); lyrics' is ``{"id", "status",
"title", "text"}``. A prompt containing ``[fail]`` ends in FAILURE instead, one containing
``[never]`` stays IN_PROGRESS for ever (for deadline tests). ``client_ref`` makes submission
idempotent: a client that lost the answer submits again and gets the same task.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field

from .routing import PlatformError, Request, route

AREA = "generation"
ACTIONS = {"song", "lyrics"}
FAIL_WORD = "[fail]"
NEVER_WORD = "[never]"
# Status and progress of each poll, in order; the last entry repeats.
STEPS = [
    ("SUBMITTED", "0%"),
    ("QUEUED", "0%"),
    ("IN_PROGRESS", "30%"),
    ("IN_PROGRESS", "60%"),
    ("IN_PROGRESS", "90%"),
]


@dataclass
class RemoteTask:
    task_id: str
    platform: str
    action: str
    prompt: str
    client_ref: str
    title: str = ""
    tags: str = ""
    polls: int = 0
    submit_time: float = field(default_factory=time.time)

    def advance(self) -> dict:
        """The task as this poll sees it; every poll moves it one step on."""
        self.polls += 1
        status, progress = STEPS[min(self.polls, len(STEPS)) - 1]
        fail_reason, data = "", {}
        if self.polls > len(STEPS):
            if NEVER_WORD in self.prompt:
                status, progress = "IN_PROGRESS", "95%"
            elif FAIL_WORD in self.prompt:
                status, progress, fail_reason = "FAILURE", "90%", "Prompt rejected by moderation"
            else:
                status, progress, data = "SUCCESS", "100%", self.result()
        return {
            "task_id": self.task_id,
            "platform": self.platform,
            "action": self.action,
            "status": status,
            "progress": progress,
            "fail_reason": fail_reason,
            "data": data,
            "client_ref": self.client_ref,
            "submit_time": self.submit_time,
            "polls": self.polls,
        }

    def result(self) -> dict:
        title = self.title or self.prompt[:40]
        if self.action == "lyrics":
            return {
                "id": f"{self.task_id}-lyrics",
                "status": "complete",
                "title": title,
                "text": f"[Verse]\n{self.prompt}\n[Chorus]\nla la la",
            }
        return {"clips": [self.clip(n, title) for n in (1, 2)]}

    def clip(self, n: int, title: str) -> dict:
        """One song clip, with the fields Suno gives one."""
        media = f"https://cdn.sandbox.invalid/{self.task_id}-{n}"
        return {
            "id": f"{self.task_id}-{n}",
            "status": "complete",
            "title": title,
            "audio_url": f"{media}.mp3",
            "video_url": f"{media}.mp4",
            "image_url": f"{media}.jpeg",
            "image_large_url": f"{media}-large.jpeg",
            "model_name": "chirp-v3",
            "major_model_version": "v3",
            "text": f"[Verse]\n{self.prompt}",
            "metadata": {
                "tags": self.tags,
                "prompt": self.prompt,
                "duration": 120 + n,
                "error_type": None,
                "error_message": None,
            },
        }


@dataclass
class GenerationState:
    lock: threading.Lock = field(default_factory=threading.Lock)
    tasks: dict[str, RemoteTask] = field(default_factory=dict)
    by_ref: dict[str, str] = field(default_factory=dict)
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))


def _state(request: Request) -> GenerationState:
    return request.state(AREA, GenerationState)


@route("POST", r"/api/generate/(?P<platform>[a-z0-9_-]+)/(?P<action>[a-z0-9_-]+)")
def submit(request: Request) -> tuple[int, dict]:
    action = request.params["action"]
    if action not in ACTIONS:
        raise PlatformError(400, f"Unknown action {action!r}")
    body = request.json()
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise PlatformError(400, "prompt is required")
    client_ref = str(body.get("client_ref") or "")
    state = _state(request)
    with state.lock:
        if client_ref and client_ref in state.by_ref:
            return 200, {"task_id": state.by_ref[client_ref], "duplicate": True}
        task_id = f"gen-{next(state.ids):06d}"
        state.tasks[task_id] = RemoteTask(
            task_id,
            request.params["platform"],
            action,
            prompt,
            client_ref,
            title=str(body.get("title") or ""),
            tags=str(body.get("tags") or ""),
        )
        if client_ref:
            state.by_ref[client_ref] = task_id
    return 201, {"task_id": task_id, "duplicate": False}


@route("GET", r"/api/generate/tasks/(?P<task_id>[A-Za-z0-9_-]+)")
def status(request: Request) -> dict:
    state = _state(request)
    with state.lock:
        task = state.tasks.get(request.params["task_id"])
        if task is None:
            raise PlatformError(404, "Task not found")
        return task.advance()
