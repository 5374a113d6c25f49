"""new-api's media types (``all``, ``video``, ``image``): a task's type follows from its action.

new-api's task log page filters its list and its statistics by ``media_type``, and its server
classifies a task by the action alone: the image actions and the video actions below (its
``TASK_ACTION_*`` names, the ones the page checks before offering a preview). Any other action
(Suno's music and lyrics, and so Task Center's ``song`` and ``lyrics``) is neither an image nor a
video.

One difference, on purpose: new-api's ``all`` means "image or video", which on a task center
holding only songs and lyrics would show an empty page by default. Here ``all`` (and an empty
value) means every generation task; ``video`` and ``image`` select the actions below.
"""

from __future__ import annotations

from django.db.models import QuerySet

from taskcenter.models import Task

ALL, VIDEO, IMAGE = "all", "video", "image"
MEDIA_TYPES = (ALL, VIDEO, IMAGE)

# new-api's action names, as its page and server spell them.
MEDIA_TYPE_ACTIONS: dict[str, tuple[str, ...]] = {
    IMAGE: ("imageGenerate", "imageEdit"),
    VIDEO: ("generate", "textGenerate", "firstTailGenerate", "referenceGenerate", "remixGenerate"),
}


def media_type_of(action: str) -> str | None:
    """``"video"`` or ``"image"`` for an action new-api counts as one, else None."""
    for media_type, actions in MEDIA_TYPE_ACTIONS.items():
        if action.strip() in actions:
            return media_type
    return None


def of_media_type(tasks: QuerySet[Task], media_type: str) -> QuerySet[Task]:
    """``tasks`` narrowed to ``media_type`` (``all``: unchanged)."""
    if media_type == ALL:
        return tasks
    return tasks.filter(action__in=MEDIA_TYPE_ACTIONS[media_type])
