"""One task, one status: the sync dialect, the canonical API and the admin agree at once."""

from __future__ import annotations

import pytest
from django.urls import reverse

from taskcenter.models import Status, Task

pytestmark = pytest.mark.django_db


def sync_create(api) -> tuple[str, int]:
    response = api.post(
        "/api/sync/tasks", {"data_source_id": "ds_one", "task_type": "full_sync"}, format="json"
    )
    assert response.status_code == 201
    public = response.json()["data"]["id"]
    return public, int(public.removeprefix("task_"))


def statuses(api, admin_client, public: str, pk: int) -> tuple[str, str, bytes]:
    sync = api.get(f"/api/sync/tasks/{public}").json()["data"]["status"]
    canonical = api.get(f"/api/v1/tasks/{pk}").json()["status"]
    page = admin_client.get(reverse("admin:taskcenter_task_change", args=[pk])).content
    return sync, canonical, page


def test_a_sync_task_is_the_same_task_in_the_canonical_api_and_the_admin(api, admin_client):
    public, pk = sync_create(api)

    sync, canonical, page = statuses(api, admin_client, public, pk)

    assert (sync, canonical) == ("pending", "QUEUED")
    assert b"Queued</span>" in page
    listed = api.get("/api/v1/tasks", {"task_type": "sync.full_sync"}).json()["items"]
    assert [t["id"] for t in listed] == [pk]
    assert listed[0]["parameters"]["data_source_id"] == "ds_one"


def test_cancel_through_the_canonical_api_shows_at_once_in_the_sync_dialect(api, admin_client):
    public, pk = sync_create(api)

    assert api.post(f"/api/v1/tasks/{pk}/cancel").status_code == 200
    sync, canonical, page = statuses(api, admin_client, public, pk)

    assert (sync, canonical) == ("cancelled", "CANCELLED")
    assert b"Cancelled</span>" in page
    assert api.post(f"/api/sync/tasks/{public}/cancel").status_code == 409


def test_cancel_and_retry_through_the_sync_dialect_show_at_once_elsewhere(api, admin_client):
    public, pk = sync_create(api)

    assert api.post(f"/api/sync/tasks/{public}/cancel").status_code == 200
    assert statuses(api, admin_client, public, pk)[:2] == ("cancelled", "CANCELLED")
    assert api.post(f"/api/sync/tasks/{public}/retry").status_code == 200
    assert statuses(api, admin_client, public, pk)[:2] == ("pending", "QUEUED")
    assert api.post(f"/api/v1/tasks/{pk}/stop").status_code == 200
    assert statuses(api, admin_client, public, pk)[:2] == ("paused", "STOPPED")
    assert Task.objects.get(pk=pk).status == Status.STOPPED


def test_a_sync_task_made_through_the_canonical_api_is_listed_by_its_data_source(api):
    created = api.post(
        "/api/v1/tasks",
        {"task_type": "sync.full_sync", "parameters": {"data_source_id": "crm"}},
        format="json",
    )
    assert created.status_code == 201
    pk = created.json()["id"]

    def listed(source: str) -> list[str]:
        page = api.get("/api/sync/tasks", {"data_source_id": source}).json()["data"]
        return [item["id"] for item in page["tasks"]]

    assert listed("crm") == [f"task_{pk}"]
    assert (
        api.patch(
            f"/api/v1/tasks/{pk}", {"parameters": {"data_source_id": "erp"}}, format="json"
        ).status_code
        == 200
    )

    assert listed("crm") == []
    assert listed("erp") == [f"task_{pk}"]
    assert Task.objects.get(pk=pk).data_source_id == "erp"
