"""Settings for the test suite: the real ones, with only what tests need changed."""

from .settings import *  # noqa: F403

# Hashing a password with the production hasher costs ~0.3 s; tests create many users.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The API's throttles would trip on test suites that make thousands of requests.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {
        "anon": "100000/min",
        "user": "100000/min",
        "failed_auth": "100000/min",
    },
}

# Most tests drive the lifecycle with the demo kinds; a worker started with
# TASKCENTER_DEMO_KINDS=false shows what production does with their rows.
TASKCENTER = {
    **TASKCENTER,  # noqa: F405
    "DEMO_KINDS": env_bool("TASKCENTER_DEMO_KINDS", default=True),  # noqa: F405
}
