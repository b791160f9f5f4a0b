from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from api.views import SubmissionViewSet, WebhookEventViewSet

router = SimpleRouter()
router.register("submissions", SubmissionViewSet, basename="submission")
router.register("events", WebhookEventViewSet, basename="event")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"
    ),
    *router.urls,
]
