"""social-auto-upload's paths, at the site root as social-auto-upload serves them."""

from django.urls import include, path

from publishing.api import accounts, files, publish, views

urlpatterns = [
    path("upload", views.UploadView.as_view(), name="publishing-upload"),
    path("uploadSave", views.UploadSaveView.as_view(), name="publishing-upload-save"),
    path("getFiles", views.FileListView.as_view(), name="publishing-files"),
    path("getFile", files.FilePreviewView.as_view(), name="publishing-file"),
    path("download/<path:file_path>", files.FileDownloadView.as_view(), name="publishing-download"),
    path("deleteFile", views.FileDeleteView.as_view(), name="publishing-delete-file"),
    path("getAccounts", views.AccountListView.as_view(), name="publishing-accounts"),
    path(
        "getValidAccounts",
        accounts.ValidAccountListView.as_view(),
        name="publishing-check-accounts",
    ),
    path("addAccount", views.AccountCreateView.as_view(), name="publishing-add-account"),
    path("updateUserinfo", views.AccountUpdateView.as_view(), name="publishing-update-account"),
    path("deleteAccount", views.AccountDeleteView.as_view(), name="publishing-delete-account"),
    path("uploadCookie", accounts.UploadCookieView.as_view(), name="publishing-upload-cookie"),
    path(
        "downloadCookie", accounts.DownloadCookieView.as_view(), name="publishing-download-cookie"
    ),
    path("postVideo", publish.PostVideoView.as_view(), name="publishing-post-video"),
    path("postVideoBatch", publish.PostVideoBatchView.as_view(), name="publishing-post-batch"),
    path(
        "postVideosToMultiplePlatforms",
        publish.PostMultiPlatformView.as_view(),
        name="publishing-post-multi",
    ),
    path("getPublishTaskRecords", views.RecordListView.as_view(), name="publishing-records"),
    path("updatePublishTaskStatus", views.StatusUpdateView.as_view(), name="publishing-status"),
    path("retryPublishTask", views.RetryView.as_view(), name="publishing-retry"),
    path("cancelPublishTask", views.CancelView.as_view(), name="publishing-cancel"),
    path("", include("publishing.api.login")),  # GET /login, the account login stream
]
