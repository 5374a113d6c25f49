"""Exceptions shared by the lifecycle, the runner and handlers."""


class InvalidTransition(Exception):
    """A lifecycle action was refused because the task is not in a status that allows it."""

    def __init__(self, task_id: int, action: str, current_status: str | None) -> None:
        self.task_id = task_id
        self.action = action
        self.current_status = current_status
        if current_status is None:
            message = f"Task {task_id} does not exist"
        else:
            message = f"Cannot {action} task {task_id}: it is {current_status}"
        super().__init__(message)


class UnknownKind(LookupError):
    """No task kind is registered under this name."""


class PermanentError(Exception):
    """Raised by a handler for an error that retrying cannot fix (bad input, suspended account)."""


class RetryableError(Exception):
    """Raised by a handler for a transient error; ``retry_after`` overrides the back-off."""

    def __init__(self, message: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AttemptInterrupted(Exception):
    """The attempt must end now: the task was stopped or cancelled, or its lease was lost."""

    reason = "interrupted"


class TaskStopped(AttemptInterrupted):
    reason = "stopped"


class TaskCancelled(AttemptInterrupted):
    reason = "cancelled"


class LeaseLost(AttemptInterrupted):
    """Another worker (or the reaper) took this attempt over; its results are no longer ours."""

    reason = "lease lost"


class PollAgain(Exception):
    """End this attempt without an outcome and call the handler again after ``seconds``."""

    def __init__(self, seconds: float, message: str = "", *, waiting_for: str = "platform") -> None:
        super().__init__(message or f"poll again in {seconds:g}s")
        self.seconds = seconds
        self.message = message
        # "platform" (the remote job is not done) or "account" (the account is busy): what the
        # queues page counts the waiting task under.
        self.waiting_for = waiting_for


class InsufficientQuota(InvalidTransition):
    """The owner's quota balance cannot pay for this task: nothing was created or re-queued.

    A refused transition like any other (admin actions and commands count it as refused, under
    the status the task stays in), but the API answers it 402 Payment Required.
    """

    def __init__(
        self,
        *,
        needed: int,
        balance: int,
        task_id: int = 0,
        action: str = "create",
        current_status: str | None = None,
        tasks: int = 1,
    ) -> None:
        super().__init__(task_id, action, current_status)
        self.needed = needed
        self.balance = balance
        what = "this task costs" if tasks == 1 else f"these {tasks} tasks cost"
        self.args = (f"Insufficient quota: {what} {needed}, the balance is {balance}",)
