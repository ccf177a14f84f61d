from core.api import Router

from .flags import BadDataViewSet, FlagViewSet
from .tagtables import TagTableViewSet
from .views import ButlerRepoViewSet, DataIdSetViewSet, ExposureViewSet

router = Router()
router.register("butler-repos", ButlerRepoViewSet, basename="butlerrepo")
router.register("exposures", ExposureViewSet, basename="exposure")
router.register("dataid-sets", DataIdSetViewSet, basename="dataidset")
router.register("tag-tables", TagTableViewSet, basename="tagtable")

router.register("flags", FlagViewSet, basename="flag")
router.register("bad-data", BadDataViewSet, basename="baddata")

urlpatterns = router.urls

# The selection builder.
from django.urls import re_path  # noqa: E402

from .selections import SelectionCountView, SelectionFreezeView, SelectionRerunView  # noqa: E402

urlpatterns += [
    re_path(r"^selections/count/?$", SelectionCountView.as_view(), name="selection-count"),
    re_path(r"^selections/freeze/?$", SelectionFreezeView.as_view(), name="selection-freeze"),
    re_path(r"^selections/rerun/?$", SelectionRerunView.as_view(), name="selection-rerun"),
]
