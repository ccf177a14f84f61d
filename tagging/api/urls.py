from rest_framework.routers import DefaultRouter

from .tagtables import TagTableViewSet
from .views import ButlerRepoViewSet, DataIdSetViewSet, ExposureViewSet

router = DefaultRouter()
router.register("butler-repos", ButlerRepoViewSet, basename="butlerrepo")
router.register("exposures", ExposureViewSet, basename="exposure")
router.register("dataid-sets", DataIdSetViewSet, basename="dataidset")
router.register("tag-tables", TagTableViewSet, basename="tagtable")

urlpatterns = router.urls
