from django.urls import path

from . import views

app_name = "metrics"

urlpatterns = [
    path("", views.explorer, name="explorer"),
    path("compare/", views.compare, name="compare"),
    path("select/", views.threshold_select, name="select"),
    path("campaigns/<id:pk>/", views.campaign_overview, name="overview"),
]
