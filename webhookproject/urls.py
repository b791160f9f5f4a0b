from django.contrib import admin
from django.urls import include, path

from submissions.admin.forms import form_table_view, forms_view
from submissions.admin.overview import overview_view
from submissions.views import WebhookView
from webhookproject.views import landing

admin.site.site_header = "logicdialog webhooks"
admin.site.site_title = "logicdialog webhooks"
admin.site.index_title = "Bots, deliveries and form submissions"
admin.site.site_url = "/"  # "View site": the landing page

urlpatterns = [
    path("", landing, name="landing"),
    path("webhooks/<slug:bot_slug>/", WebhookView.as_view(), name="webhook"),
    # The URL as people paste it, without the slash: a redirect would drop the
    # POST body, so the same view answers here.
    path("webhooks/<slug:bot_slug>", WebhookView.as_view(), name="webhook-no-slash"),
    path(
        "admin/overview/", admin.site.admin_view(overview_view), name="admin-overview"
    ),
    path("admin/forms/", admin.site.admin_view(forms_view), name="admin-forms"),
    path(
        # path: a handler name is whatever the caller sent, slashes included.
        "admin/forms/<int:bot_id>/<path:handler_name>/",
        admin.site.admin_view(form_table_view),
        name="admin-form-table",
    ),
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
]

handler404 = "webhookproject.errors.not_found"
handler500 = "webhookproject.errors.server_error"
