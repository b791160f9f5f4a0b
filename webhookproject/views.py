"""The project's own pages: the landing page at the root URL."""

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse


def landing(request: HttpRequest) -> HttpResponse:
    """What this server is, and where to go: the admin, the API docs, the health check."""
    return TemplateResponse(request, "landing.html", {"title": "logicdialog webhooks"})
