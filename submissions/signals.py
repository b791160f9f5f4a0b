"""Side notifications: what other apps may listen to, never how a delivery is handled.

``delivery_answered`` is sent once per request to a known bot, after its
event (whatever its status: processed, failed, unrouted, rejected,
duplicate) and reply are committed; ``sender`` is ``WebhookEvent``,
``event`` the stored event. ``follow_up_dead`` is sent when a handler's
follow-up work has failed for good; ``event`` and ``run`` (the dead
``HandlerRun``). Receivers run on the request path or in the task worker:
they must be quick and never raise (queue a task for anything slow).
"""

from django.dispatch import Signal

delivery_answered = Signal()
follow_up_dead = Signal()
