from django.urls import path

from . import views, views_attention

app_name = "campaigns"

urlpatterns = [
    path("", views.campaign_list, name="list"),
    path("error-rules/", views.error_rules, name="error-rules"),
    path("recurring/", views.recurring_list, name="recurring-list"),
    path("recurring/<id:recurring_id>/", views.recurring_edit, name="recurring-edit"),
    path("recurring/<id:recurring_id>/<str:verb>/", views.recurring_action, name="recurring-action"),
    path("<id:pk>/run-panel/", views.campaign_run_panel, name="run-panel"),
    path("<id:pk>/plan/", views.campaign_plan, name="plan"),
    path("<id:pk>/launch/", views.campaign_launch, name="launch"),
    path("<id:pk>/pause/", views.campaign_pause, name="pause"),
    path("<id:pk>/resume/", views.campaign_resume, name="resume"),
    path("<id:pk>/steps/<id:step_id>/approve/", views.step_approve, name="step-approve"),
    path("<id:pk>/errors/", views_attention.campaign_errors, name="errors"),
    path("<id:pk>/groups/<id:group_id>/", views.group_detail, name="group"),
    path(
        "<id:pk>/groups/<id:group_id>/quanta/<id:error_id>/log/",
        views_attention.quantum_log,
        name="quantum-log",
    ),
    path("<id:pk>/groups/<id:group_id>/<str:verb>/", views.group_action, name="group-action"),
    path("new/", views.campaign_create, name="create"),
    path("import/", views.campaign_import, name="import"),
    path("<id:pk>/", views.campaign_detail, name="detail"),
    path("<id:pk>/edit/", views.campaign_edit, name="edit"),
    path("<id:pk>/clone/", views.campaign_clone, name="clone"),
    path("<id:pk>/export/", views.campaign_export, name="export"),
    path("<id:pk>/status/", views.campaign_status, name="status"),
    path("<id:pk>/archive/", views.campaign_archive, name="archive"),
    path("<id:pk>/share/", views.campaign_share, name="share"),
    path("<id:pk>/attachments/", views.attachment_upload, name="attachment-upload"),
    path("<id:pk>/attachments/<id:attachment_id>/", views.attachment_download, name="attachment-download"),
    path("<id:pk>/attachments/<id:attachment_id>/delete/", views.attachment_delete, name="attachment-delete"),
]
