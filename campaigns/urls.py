from django.urls import path

from . import views, views_attention

app_name = "campaigns"

urlpatterns = [
    path("", views.campaign_list, name="list"),
    path("error-rules/", views.error_rules, name="error-rules"),
    path("recurring/", views.recurring_list, name="recurring-list"),
    path("recurring/<int:recurring_id>/", views.recurring_edit, name="recurring-edit"),
    path("recurring/<int:recurring_id>/<str:verb>/", views.recurring_action, name="recurring-action"),
    path("<int:pk>/run-panel/", views.campaign_run_panel, name="run-panel"),
    path("<int:pk>/plan/", views.campaign_plan, name="plan"),
    path("<int:pk>/launch/", views.campaign_launch, name="launch"),
    path("<int:pk>/pause/", views.campaign_pause, name="pause"),
    path("<int:pk>/resume/", views.campaign_resume, name="resume"),
    path("<int:pk>/steps/<int:step_id>/approve/", views.step_approve, name="step-approve"),
    path("<int:pk>/errors/", views_attention.campaign_errors, name="errors"),
    path("<int:pk>/groups/<int:group_id>/", views.group_detail, name="group"),
    path(
        "<int:pk>/groups/<int:group_id>/quanta/<int:error_id>/log/",
        views_attention.quantum_log,
        name="quantum-log",
    ),
    path("<int:pk>/groups/<int:group_id>/<str:verb>/", views.group_action, name="group-action"),
    path("new/", views.campaign_create, name="create"),
    path("import/", views.campaign_import, name="import"),
    path("<int:pk>/", views.campaign_detail, name="detail"),
    path("<int:pk>/edit/", views.campaign_edit, name="edit"),
    path("<int:pk>/clone/", views.campaign_clone, name="clone"),
    path("<int:pk>/export/", views.campaign_export, name="export"),
    path("<int:pk>/status/", views.campaign_status, name="status"),
    path("<int:pk>/archive/", views.campaign_archive, name="archive"),
    path("<int:pk>/share/", views.campaign_share, name="share"),
    path("<int:pk>/attachments/", views.attachment_upload, name="attachment-upload"),
    path("<int:pk>/attachments/<int:attachment_id>/", views.attachment_download, name="attachment-download"),
    path("<int:pk>/attachments/<int:attachment_id>/delete/", views.attachment_delete, name="attachment-delete"),
]
