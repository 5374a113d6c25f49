"""``user_id`` in a create body: whose task it is, and who pays for it.

The XGet scraper API's create body carries a ``user_id``. Task Center knows the caller from the
token, so the field is honoured as an operator's request: staff create the task on behalf of
that user, who then owns it and is charged its quota. Anyone else may only name themselves
(the XGet examples send the caller's own name), and naming someone else is refused as a fault
of that field, the same answer whether or not the user exists, so the refusal tells a
non-staff caller nothing about other accounts.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.request import Request

from .authentication import authenticated_user

INT64_MAX = 2**63 - 1
NOT_STAFF = "Only staff may create tasks for another user."


def task_owner(request: Request, user_id: str | None) -> User:
    """The owner of a task the request creates: the caller, or the user ``user_id`` names
    (an id or a username) when the caller is staff. Raises ``ValidationError`` on
    ``user_id`` for a non-staff caller naming someone else, or a staff caller naming no
    active user."""
    caller = authenticated_user(request)
    if not user_id or user_id in (str(caller.pk), caller.get_username()):
        return caller
    if not caller.is_staff:
        raise ValidationError({"user_id": [ErrorDetail(NOT_STAFF, code="forbidden")]})
    owner = _active_user(user_id)
    if owner is None:
        message = f"No active user has the id or username {user_id!r}."
        raise ValidationError({"user_id": [ErrorDetail(message, code="does_not_exist")]})
    return owner


def _active_user(user_id: str) -> User | None:
    # An id first, as the list's user_id filter reads it; then a username.
    users = get_user_model().objects.filter(is_active=True)
    if user_id.isascii() and user_id.isdigit() and int(user_id) <= INT64_MAX:
        by_id = users.filter(pk=int(user_id)).first()
        if by_id is not None:
            return by_id
    return users.filter(**{get_user_model().USERNAME_FIELD: user_id}).first()
