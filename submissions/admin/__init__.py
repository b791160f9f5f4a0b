"""The admin staff use every day, one module per model group.

``bigtable`` holds what keeps every list fast at any size; ``common`` the
pieces the pages share; ``bots``, ``events`` (events and handler runs),
``submissions`` and ``personal_data`` (erasure, its log, retention) register their models when imported here.
"""

from submissions.admin import bots, events, personal_data, submissions

__all__ = ["bots", "events", "personal_data", "submissions"]
