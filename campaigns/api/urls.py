from django.urls import path

from core.api import Router

from .execution import ErrorRuleViewSet, GroupViewSet, StepViewSet
from .inbox import InboxView
from .recurring import RecurringCampaignViewSet
from .views import CampaignViewSet

router = Router()
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("steps", StepViewSet, basename="step")
router.register("groups", GroupViewSet, basename="group")
router.register("error-rules", ErrorRuleViewSet, basename="errorrule")
router.register("recurring-campaigns", RecurringCampaignViewSet, basename="recurringcampaign")

urlpatterns = [path("inbox/", InboxView.as_view(), name="inbox"), *router.urls]
