"""The operators' console. Importing the modules registers their ModelAdmins with the site.

``tasks`` holds the task, execution and account-hold admins, ``dashboard`` the dashboard and the
task page's buttons, ``tokens`` the API tokens, ``workers`` the worker registry and the queues
page, ``registry`` the actions apps add to the task list.
"""

from taskcenter.admin import tasks, tokens, workers  # noqa: F401
