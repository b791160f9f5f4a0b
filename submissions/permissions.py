"""Every permission the project checks, named once.

Code checks ``user.has_perm(...)`` with the dotted constants here
(``app_label.codename``); ``models.py`` declares the custom ones in its
``Meta.permissions`` with the codenames. The admin's ``@admin.action(
permissions=[...])`` names actions' permissions by their short name
("replay", "export", "erase"), which Django maps to ``has_<name>_permission``
on the model admin; those methods check the constants here. Templates read
``perms.submissions.<codename>`` (they cannot import).
"""

from __future__ import annotations

APP_LABEL = "submissions"

#: Codenames of the permissions ``submissions.models`` adds to Django's four.
REPLAY_WEBHOOKEVENT_CODENAME = "replay_webhookevent"
EXPORT_FORMSUBMISSION_CODENAME = "export_formsubmission"
VIEW_SENSITIVE_ANSWERS_CODENAME = "view_sensitive_answers"
ERASE_PERSONAL_DATA_CODENAME = "erase_personal_data"

#: See the events and their runs (the console's overview too).
VIEW_WEBHOOKEVENT = f"{APP_LABEL}.view_webhookevent"
#: See submissions (the console's forms and their tables too).
VIEW_FORMSUBMISSION = f"{APP_LABEL}.view_formsubmission"
#: Replay events (the admin's actions, the command needs none).
REPLAY_WEBHOOKEVENT = f"{APP_LABEL}.{REPLAY_WEBHOOKEVENT_CODENAME}"
#: Export submissions to CSV or XLSX, in the admin and through the API.
EXPORT_FORMSUBMISSION = f"{APP_LABEL}.{EXPORT_FORMSUBMISSION_CODENAME}"
#: See sensitive answers unmasked (``submissions.masking``).
VIEW_SENSITIVE_ANSWERS = f"{APP_LABEL}.{VIEW_SENSITIVE_ANSWERS_CODENAME}"
#: Erase a person's data (``submissions.admin.personal_data``).
ERASE_PERSONAL_DATA = f"{APP_LABEL}.{ERASE_PERSONAL_DATA_CODENAME}"
