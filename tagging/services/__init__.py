"""Every write of the tagging app."""

from .dataids import (
    DataIdUploadError,
    UploadSource,
    dataidset_algebra,
    dataidset_create,
    dataidset_share,
    dataidset_tag_run,
    dataidset_tag_start,
)
from .repos import DEMO_REPO_DESCRIPTION, butler_repo_upsert, demo_repo_register, repo_mirror_sync

__all__ = [
    "DEMO_REPO_DESCRIPTION",
    "DataIdUploadError",
    "UploadSource",
    "butler_repo_upsert",
    "dataidset_algebra",
    "dataidset_create",
    "dataidset_share",
    "dataidset_tag_run",
    "dataidset_tag_start",
    "demo_repo_register",
    "repo_mirror_sync",
]
