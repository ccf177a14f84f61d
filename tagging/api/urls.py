from rest_framework.routers import DefaultRouter

from .views import ButlerRepoViewSet, DataIdSetViewSet, ExposureViewSet

router = DefaultRouter()
router.register("butler-repos", ButlerRepoViewSet, basename="butlerrepo")
router.register("exposures", ExposureViewSet, basename="exposure")
router.register("dataid-sets", DataIdSetViewSet, basename="dataidset")

urlpatterns = router.urls
