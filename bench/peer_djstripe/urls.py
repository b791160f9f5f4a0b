"""The peer's URLs: dj-stripe's, as its docs wire them."""

from django.urls import include, path

urlpatterns = [path("djstripe/", include("djstripe.urls", namespace="djstripe"))]
