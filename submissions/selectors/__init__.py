"""Reads, one module per use case.

``bots`` (the per-process cache of active bots), ``exports`` (a view's
submissions, columns and rows), ``search`` (the planner-aware answer
search), ``console`` (the forms list, a form's table, the overview),
``events`` (what a replay runs), ``privacy`` (what an erasure finds),
``retention`` (what a policy finds too old).
"""
