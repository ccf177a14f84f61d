"""The executor (issue "Execution"): planning campaigns into groups, running groups through BPS,
the state machine of steps and groups, and people's interventions.

- ``planning``: split rules, frozen ``where`` of each group, collection names, pipeline paths.
- ``state``: group transitions (``move_group``) and the roll-up of steps and campaigns.
- ``services``: what people call (launch, approve, retry, rescue, accept, cancel, pause, resume,
  error rules). Import these from here.
- ``runner``: what Celery tasks call (``run_group``, ``poll_running_groups``, ``reconcile_groups``).
"""

from .services import (
    campaign_launch,
    campaign_pause,
    campaign_resume,
    error_rule_create,
    error_rule_delete,
    error_rule_update,
    group_accept,
    group_cancel,
    group_rescue,
    group_retry,
    step_approve,
    step_split_set,
)

__all__ = [
    "campaign_launch",
    "campaign_pause",
    "campaign_resume",
    "error_rule_create",
    "error_rule_delete",
    "error_rule_update",
    "group_accept",
    "group_cancel",
    "group_rescue",
    "group_retry",
    "step_approve",
    "step_split_set",
]
