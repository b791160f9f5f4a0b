"""Writes, one module per use case.

``deliveries`` (a delivery's rows), ``runs`` (handler runs and the status they
leave), ``bots`` (secrets), ``reparse`` (stored bodies read again),
``privacy`` (erasure), ``retention`` (purges and policies). Plain functions,
keyword-only, named ``<entity>_<action>``; they decide no HTTP status.
Reads live in ``submissions.selectors``.
"""
