"""WSGI entry point of the dj-stripe peer, for gunicorn."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.peer_djstripe.settings")
application = get_wsgi_application()
