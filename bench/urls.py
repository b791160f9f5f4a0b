"""The production URLs, plus the bench-only floor view (``bench/intake.py``)."""

from django.urls import include, path

from bench.views import floor

urlpatterns = [
    path("bench/floor/", floor, name="bench-floor"),
    path("", include("webhookproject.urls")),
]
