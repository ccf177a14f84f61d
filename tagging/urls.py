from django.urls import path

from . import views, views_selection

app_name = "tagging"

urlpatterns = [
    path("repos/", views.repo_list, name="repos"),
    path("repos/<str:label>/exposures/", views.exposure_list, name="exposures"),
    path("repos/<str:label>/exposures/<int:exposure_id>/", views.exposure_detail, name="exposure"),
    path("repos/<str:label>/sync/", views.repo_sync, name="repo-sync"),
    path("sets/", views.dataidset_list, name="sets"),
    path("sets/new/", views.dataidset_upload, name="set-upload"),
    path("sets/<int:pk>/", views.dataidset_detail, name="set"),
    path("sets/<int:pk>/download/", views.dataidset_download, name="set-download"),
    path("sets/<int:pk>/tag/", views.dataidset_tag, name="set-tag"),
    path("sets/<int:pk>/share/", views.dataidset_share, name="set-share"),
    path("sets/<int:pk>/combine/", views.dataidset_combine, name="set-combine"),
    # The selection builder.
    path("selections/", views_selection.selection_builder, name="selection-builder"),
    path("sets/<int:pk>/rerun/", views_selection.selection_rerun, name="selection-rerun"),
]
