from django.contrib import admin
from django.urls import include, path

from submissions.views import WebhookView
from webhookproject.views import landing

urlpatterns = [
    path("", landing, name="landing"),
    path("webhooks/<slug:bot_slug>/", WebhookView.as_view(), name="webhook"),
    # The URL as people paste it, without the slash: a redirect would drop the
    # POST body, so the same view answers here.
    path("webhooks/<slug:bot_slug>", WebhookView.as_view(), name="webhook-no-slash"),
    # The console's pages (overview, forms) are the site's own: submissions.sites.
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
]

handler404 = "webhookproject.errors.not_found"
handler500 = "webhookproject.errors.server_error"
