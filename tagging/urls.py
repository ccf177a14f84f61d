from django.urls import path

from . import views, views_baddata, views_flags, views_selection, views_tagtables

app_name = "tagging"

urlpatterns = [
    path("repos/", views.repo_list, name="repos"),
    path("repos/<str:label>/exposures/", views.exposure_list, name="exposures"),
    path("repos/<str:label>/exposures/<id:exposure_id>/", views.exposure_detail, name="exposure"),
    path("repos/<str:label>/sync/", views.repo_sync, name="repo-sync"),
    path("sets/", views.dataidset_list, name="sets"),
    path("sets/new/", views.dataidset_upload, name="set-upload"),
    path("sets/<id:pk>/", views.dataidset_detail, name="set"),
    path("sets/<id:pk>/download/", views.dataidset_download, name="set-download"),
    path("sets/<id:pk>/tag/", views.dataidset_tag, name="set-tag"),
    path("sets/<id:pk>/share/", views.dataidset_share, name="set-share"),
    path("sets/<id:pk>/combine/", views.dataidset_combine, name="set-combine"),
    # Tag tables
    path("tag-tables/", views_tagtables.tagtable_list, name="tagtables"),
    path("tag-tables/new/", views_tagtables.tagtable_create, name="tagtable-create"),
    path("tag-tables/<id:pk>/", views_tagtables.tagtable_detail, name="tagtable"),
    path("tag-tables/<id:pk>/schema/", views_tagtables.tagtable_schema, name="tagtable-schema"),
    path("tag-tables/<id:pk>/history/", views_tagtables.tagtable_history, name="tagtable-history"),
    path("tag-tables/<id:pk>/share/", views_tagtables.tagtable_share, name="tagtable-share"),
    path("tag-tables/<id:pk>/upload/", views_tagtables.tagtable_upload, name="tagtable-upload"),
    path("tag-tables/<id:pk>/download/", views_tagtables.tagtable_download, name="tagtable-download"),
    # The selection builder.
    path("selections/", views_selection.selection_builder, name="selection-builder"),
    path("sets/<id:pk>/rerun/", views_selection.selection_rerun, name="selection-rerun"),
    # Exposure flags and the bad-data register
    path("repos/<str:label>/exposures/<id:exposure_id>/flags/", views_flags.flag_add, name="flag-add"),
    path("flags/", views_flags.flag_list, name="flags"),
    path("flags/import/", views_flags.flag_import, name="flag-import"),
    path("flags/<uuid:pk>/", views_flags.flag_detail, name="flag"),
    path("flags/<uuid:pk>/edit/", views_flags.flag_edit, name="flag-edit"),
    path("flags/<uuid:pk>/invalidate/", views_flags.flag_invalidate, name="flag-invalidate"),
    path("bad-data/", views_baddata.bad_data_list, name="baddata-list"),
    path("bad-data/new/", views_baddata.bad_data_create, name="baddata-create"),
    path("bad-data/<id:pk>/", views_baddata.bad_data_detail, name="baddata"),
    path("bad-data/<id:pk>/edit/", views_baddata.bad_data_edit, name="baddata-edit"),
    path("bad-data/<id:pk>/status/", views_baddata.bad_data_status, name="baddata-status"),
    path("bad-data/from-failure/<id:error_id>/", views_baddata.bad_data_from_failure, name="baddata-from-failure"),
]
