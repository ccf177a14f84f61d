"""Print a user's API token, creating it if needed or expired (``--reset`` replaces it)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.tokens import token_for, token_revoke


class Command(BaseCommand):
    help = "Print the API token of USERNAME, creating it if it does not exist."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--reset", action="store_true", help="Replace an existing token with a new one.")

    def handle(self, *args, username: str, reset: bool, **options):
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {username!r}.")
        if reset:
            token_revoke(user=user)
        self.stdout.write(token_for(user).key)  # a new one if theirs expired (CM_TOKEN_MAX_AGE)
