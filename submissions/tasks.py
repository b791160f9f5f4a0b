"""Where earlier releases queued follow-up tasks from; kept so that tasks
already queued under ``submissions.tasks.run_follow_up`` still run.
The task lives in ``submissions.followups``.
"""

from submissions.followups import run_follow_up

__all__ = ["run_follow_up"]
