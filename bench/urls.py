"""The production URLs, plus room for bench-only views."""

from django.urls import include, path

urlpatterns = [
    path("", include("webhookproject.urls")),
]
