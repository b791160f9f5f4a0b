"""A table for the floor view only; it exists in bench.settings' database alone."""

from django.db import models
from django.utils import timezone


class FloorRow(models.Model):
    """One request body, as the floor view stores it: the least any receiver writes."""

    received_at = models.DateTimeField(default=timezone.now)
    body = models.BinaryField()

    def __str__(self) -> str:
        return f"floor row {self.pk}"
