"""The project's admin site: Django's, with the console's pages inside it.

``WebhooksAdminConfig`` stands in for ``django.contrib.admin`` in
``INSTALLED_APPS`` (Django's documented way to replace the default site), so
``django.contrib.admin.site`` is a ``WebhooksAdminSite`` and every
``@admin.register`` lands on it. Its ``get_urls`` adds the console's pages in
the admin's namespace, behind ``admin_view`` (staff only, never cached):

    reverse("admin:overview")                      /admin/overview/
    reverse("admin:forms")                         /admin/forms/
    reverse("admin:form-table", args=[bot_id, h])  /admin/forms/<bot_id>/<h>/

This module lives outside the ``submissions.admin`` package on purpose:
importing a module of that package runs its ``__init__``, which registers
model admins on the default site, the very object this class is needed to
build.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.urls import URLPattern, URLResolver, path


class WebhooksAdminSite(admin.AdminSite):
    site_header = "logicdialog webhooks"
    site_title = "logicdialog webhooks"
    index_title = "Bots, deliveries and form submissions"
    site_url = "/"  # "View site": the landing page

    def get_urls(self) -> list[URLPattern | URLResolver]:
        # Imported here, not at the top: see the module's docstring.
        from submissions.admin.forms import form_table_view, forms_view
        from submissions.admin.overview import overview_view

        console = [
            path("overview/", self.admin_view(overview_view), name="overview"),
            path("forms/", self.admin_view(forms_view), name="forms"),
            path(
                # path: a handler name is whatever the caller sent, slashes included.
                "forms/<int:bot_id>/<path:handler_name>/",
                self.admin_view(form_table_view),
                name="form-table",
            ),
        ]
        # Before Django's own: its app index and catch-all would take them.
        return console + super().get_urls()


class WebhooksAdminConfig(AdminConfig):
    default_site = "submissions.sites.WebhooksAdminSite"
