"""Root URLs: pages, the REST API under /api/v1/, its schema and docs, and the admin."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authtoken.views import obtain_auth_token

from core import health, monitoring
from core import views as core_views

api_v1 = [
    path("", include("campaigns.api.urls")),
    path("", include("tagging.api.urls")),
    path("", include("metrics.api.urls")),
    path("auth/token/", obtain_auth_token, name="token"),
]

urlpatterns = [
    path("", core_views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/token/", core_views.token_page, name="token-page"),
    path("status/", core_views.status_page, name="status"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.ReadinessView.as_view(), name="readyz"),
    path("metrics", monitoring.metrics_view, name="prometheus-metrics"),
    path("campaigns/", include("campaigns.urls")),
    path("data/", include("tagging.urls")),
    path("metrics/", include("metrics.urls")),
    path("metrics/", include("metrics.urls_loop")),
    path("api/v1/", include((api_v1, "api"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("admin/", admin.site.urls),
]
