"""The HTTP provider's reading of a platform's job: a Suno-style platform answers a song's clips
as a bare list, and the clips are kept (as ``{"clips": [...]}``, an object like every result)."""

from __future__ import annotations

from generation.providers import HttpProvider

CLIPS = [{"id": "c1", "audio_url": "https://cdn.example.invalid/c1.mp3", "title": "Sea"}]


def answering(monkeypatch, body: dict) -> HttpProvider:
    """A provider whose platform answers ``body`` (the network call is what is replaced)."""
    monkeypatch.setattr(HttpProvider, "_call", lambda self, method, path, **kwargs: body)
    return HttpProvider()


def test_clips_answered_as_a_list_are_kept(monkeypatch):
    provider = answering(monkeypatch, {"status": "SUCCESS", "progress": "100%", "data": CLIPS})

    job = provider.fetch("gen-000001")

    assert (job.status, job.percent, job.data) == ("SUCCESS", 100, {"clips": CLIPS})


def test_an_object_is_kept_as_it_is_and_anything_else_is_no_data(monkeypatch):
    lyrics = {"id": "l1", "status": "complete", "title": "Rain", "text": "la"}

    assert answering(monkeypatch, {"status": "SUCCESS", "data": lyrics}).fetch("g").data == lyrics
    assert answering(monkeypatch, {"status": "QUEUED", "data": "soon"}).fetch("g").data == {}
