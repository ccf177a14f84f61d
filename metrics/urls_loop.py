from django.urls import path

from . import views_loop

app_name = "metrics-web"

urlpatterns = [
    path("reobserve/<id:pk>/", views_loop.reobserve, name="reobserve"),
]
