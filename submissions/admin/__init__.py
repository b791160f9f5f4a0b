"""The admin staff use every day, one module per model group.

``bigtable`` holds what keeps every list fast at any size; ``common`` the
pieces the pages share; ``bots``, ``events`` (events and handler runs),
``submissions``, ``personal_data`` (erasure, its log, retention) and
``replay_jobs`` (bulk replays) register their models when imported here.
"""

from submissions.admin import bots, events, personal_data, replay_jobs, submissions

__all__ = ["bots", "events", "personal_data", "replay_jobs", "submissions"]
