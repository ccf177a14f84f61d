"""Root URLs: pages, the REST API under /api/v1/, its schema and docs, and the admin."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from campaigns.views_attention import inbox
from core import health, monitoring
from core import views as core_views
from core.auth import ThrottledLoginView, TokenView, throttle_admin_login

# The admin checks passwords too: the same log-in limit applies to it.
admin.site.login = throttle_admin_login(admin.site.login)  # type: ignore[method-assign]

api_v1 = [
    path("", include("campaigns.api.urls")),
    path("", include("tagging.api.urls")),
    path("", include("metrics.api.urls")),
    path("auth/token/", TokenView.as_view(), name="token"),
]

urlpatterns = [
    path("", core_views.home, name="home"),
    path("login/", ThrottledLoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/token/", core_views.token_page, name="token-page"),
    path("status/", core_views.status_page, name="status"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", monitoring.metrics_view, name="prometheus-metrics"),
    path("inbox/", inbox, name="inbox"),
    path("campaigns/", include("campaigns.urls")),
    path("data/", include("tagging.urls")),
    path("metrics/", include("metrics.urls")),
    path("metrics/", include("metrics.urls_loop")),
    path("api/v1/", include((api_v1, "api"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("admin/", admin.site.urls),
]

# JSON errors under /api/, the site's error pages elsewhere (templates/400.html, 403.html, 404.html, 500.html).
handler400 = "core.views.bad_request"
handler403 = "core.views.permission_denied"
handler404 = "core.views.page_not_found"
handler500 = "core.views.server_error"
