from django.contrib import admin
from django.urls import path

from submissions.views import WebhookView

urlpatterns = [
    path("webhooks/<slug:bot_slug>/", WebhookView.as_view(), name="webhook"),
    path("admin/", admin.site.urls),
]
