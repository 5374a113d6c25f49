"""social-auto-upload's paths, at the site root as social-auto-upload serves them."""

from django.urls import include, path

from publishing.api import views

urlpatterns = [
    path("upload", views.UploadFileView.as_view(), name="publishing-upload"),
    path("uploadSave", views.UploadFileView.as_view(), name="publishing-upload-save"),
    path("getFiles", views.FileListView.as_view(), name="publishing-files"),
    path("deleteFile", views.FileDeleteView.as_view(), name="publishing-delete-file"),
    path("getAccounts", views.AccountListView.as_view(), name="publishing-accounts"),
    path("addAccount", views.AccountCreateView.as_view(), name="publishing-add-account"),
    path("updateUserinfo", views.AccountUpdateView.as_view(), name="publishing-update-account"),
    path("deleteAccount", views.AccountDeleteView.as_view(), name="publishing-delete-account"),
    path("postVideo", views.PostVideoView.as_view(), name="publishing-post-video"),
    path(
        "postVideosToMultiplePlatforms",
        views.PostMultiPlatformView.as_view(),
        name="publishing-post-multi",
    ),
    path("getPublishTaskRecords", views.RecordListView.as_view(), name="publishing-records"),
    path("updatePublishTaskStatus", views.StatusUpdateView.as_view(), name="publishing-status"),
    path("retryPublishTask", views.RetryView.as_view(), name="publishing-retry"),
    path("cancelPublishTask", views.CancelView.as_view(), name="publishing-cancel"),
    path("", include("publishing.api.login")),  # GET /login, the account login stream
]
