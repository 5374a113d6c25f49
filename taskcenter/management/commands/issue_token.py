"""Issue an API token and print its key: the only time the key is shown."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from taskcenter.models.tokens import ApiToken


class Command(BaseCommand):
    help = (
        "Issue a new API token for <username> and print its key, once (only its digest is "
        "stored); use it as 'Authorization: Bearer <key>'. --reset revokes the user's other "
        "tokens first."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--reset", action="store_true", help="Revoke the user's existing tokens first."
        )

    def handle(self, *args, username: str, reset: bool, **options):
        User = get_user_model()
        try:
            user = User.objects.get(**{User.USERNAME_FIELD: username})
        except User.DoesNotExist:
            raise CommandError(f"No user named {username!r}") from None
        if not user.is_active:
            raise CommandError(f"User {username!r} is inactive")
        if reset:
            revoked, _ = ApiToken.objects.filter(user=user).delete()
            if revoked:
                self.stderr.write(f"Revoked {revoked} earlier token(s) of {username}.")
        _, key = ApiToken.objects.issue(user)
        self.stdout.write(key)
