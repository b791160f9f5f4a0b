"""The admin site: Django's default site is the project's, the console inside it."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import resolve, reverse

from submissions.models import Bot, FormSubmission, WebhookEvent
from submissions.sites import WebhooksAdminSite

pytestmark = pytest.mark.django_db


def test_the_default_site_is_the_projects_with_every_model_registered():
    assert isinstance(admin.site, WebhooksAdminSite)
    for model in (Bot, WebhookEvent, FormSubmission):
        assert admin.site.is_registered(model)
    assert admin.site.site_header == "logicdialog webhooks"


@pytest.mark.parametrize(
    ("name", "args", "url"),
    [
        ("admin:overview", [], "/admin/overview/"),
        ("admin:forms", [], "/admin/forms/"),
        ("admin:form-table", [3, "a/b"], "/admin/forms/3/a/b/"),
    ],
)
def test_the_console_pages_keep_their_paths_in_the_admin_namespace(name, args, url):
    assert reverse(name, args=args) == url
    assert resolve(url).namespace == "admin"


def test_the_console_pages_are_behind_the_admin_login(client):
    response = client.get("/admin/overview/")

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
