"""``runserver`` as Django's (static files included), reading chunked bodies.

See ``submissions.devserver``. The ``submissions`` app is listed before
``django.contrib.staticfiles`` so that this command is the one that runs.
"""

from django.contrib.staticfiles.management.commands.runserver import (
    Command as StaticFilesRunserver,
)

from submissions.devserver import ChunkedWSGIServer


class Command(StaticFilesRunserver):
    server_cls = ChunkedWSGIServer
