from rest_framework.routers import DefaultRouter

from .flags import BadDataViewSet, FlagViewSet
from .views import ButlerRepoViewSet, DataIdSetViewSet, ExposureViewSet

router = DefaultRouter()
router.register("butler-repos", ButlerRepoViewSet, basename="butlerrepo")
router.register("exposures", ExposureViewSet, basename="exposure")
router.register("dataid-sets", DataIdSetViewSet, basename="dataidset")

router.register("flags", FlagViewSet, basename="flag")
router.register("bad-data", BadDataViewSet, basename="baddata")

urlpatterns = router.urls
