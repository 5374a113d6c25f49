"""``manage.py grant_quota <username> <amount>``: add quota to a user's balance (ledgered)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from quota import ledger as quota


class Command(BaseCommand):
    help = (
        "Add <amount> to <username>'s quota balance (negative takes away) and write a 'grant' "
        "ledger row. With --at-least, top the balance up to <amount> only if it is lower."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("amount", type=int)
        parser.add_argument("--note", default="", help="Recorded on the ledger row.")
        parser.add_argument(
            "--at-least",
            action="store_true",
            help="Treat <amount> as the target balance: grant the difference, if any.",
        )

    def handle(self, *args, username: str, amount: int, note: str, at_least: bool, **options):
        User = get_user_model()
        user = User.objects.filter(**{User.USERNAME_FIELD: username}).first()
        if user is None:
            raise CommandError(f"No user named {username!r}")
        if at_least:
            amount = max(amount - quota.balance_of(user.pk), 0)
        if amount == 0:
            self.stdout.write(f"{username}: balance {quota.balance_of(user.pk)} (unchanged)")
            return
        try:
            entry = quota.grant(user.pk, amount, note=note, actor="command:grant_quota")
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{username}: {amount:+d}, balance {entry.balance_after}")
