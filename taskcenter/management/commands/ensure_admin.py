"""Make sure an admin account exists and tell the operator how to log in.

The password is random per installation and kept in ``VAR_DIR/<username>_password`` (mode 600)
so ``make run`` can print it on every start; there is never a default password to guess.
"""

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction


def password_file(username: str) -> Path:
    return Path(settings.VAR_DIR) / f"{username}_password"


def write_secret(path: Path, secret: str) -> None:
    """Write ``secret`` readable by the owner only, even for the instant before a chmod."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    path.chmod(0o600)  # O_CREAT's mode does not apply to a file that already existed


class Command(BaseCommand):
    help = (
        "Create the admin superuser with a random password if it does not exist (stored in "
        "VAR_DIR/<username>_password), and print how to log in."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin", help="Default: %(default)s.")
        parser.add_argument("--email", default="", help="Email of a newly created user.")
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Give the user a new random password (and store it).",
        )

    def handle(self, *args, username, email, reset, **options):
        User = get_user_model()
        secret_path = password_file(username)
        user = User.objects.filter(**{User.USERNAME_FIELD: username}).first()

        if user is None or reset:
            password = secrets.token_urlsafe(18)
            # One transaction: if the file cannot be written the account is not created (or
            # keeps its old password), so no password ever exists that nobody knows.
            with transaction.atomic():
                if user is None:
                    user = User.objects.create_superuser(username, email, password)
                    action = "Created superuser"
                else:
                    user.set_password(password)
                    user.save(update_fields=["password"])
                    action = "Reset the password of"
                write_secret(secret_path, password)
            self.stdout.write(self.style.SUCCESS(f"{action} {username!r}."))
            self._print_login(username, password, secret_path)
            return

        if not secret_path.exists():
            self._print_login(username, None, secret_path)
            self.stdout.write(
                self.style.WARNING(
                    f"User {username!r} exists but {secret_path} is missing, so its password "
                    "is not known here. Set one with:\n"
                    f"  python manage.py changepassword {username}\n"
                    f"or generate and store a new one with:\n"
                    f"  python manage.py ensure_admin --username {username} --reset"
                )
            )
            return

        password = secret_path.read_text().strip()
        self._print_login(username, password, secret_path)
        if not user.check_password(password):
            self.stdout.write(
                self.style.WARNING(
                    f"The password in {secret_path} no longer matches (it was changed since). "
                    f"Run `python manage.py ensure_admin --username {username} --reset` to "
                    "store a new one."
                )
            )

    def _print_login(self, username: str, password: str | None, secret_path: Path) -> None:
        port = os.environ.get("PORT") or "8000"
        lines = [
            "Admin login",
            f"  URL:      http://127.0.0.1:{port}/admin/",
            f"  user:     {username}",
            f"  password: {password if password is not None else '(unknown, see below)'}",
        ]
        if password is not None:
            lines.append(f"  (stored in {secret_path})")
        self.stdout.write("\n".join(lines))
