"""The floor: what the cheapest possible receiver costs on the same stack.

A plain Django view (no DRF, no JWT, no JSON parsing) that inserts the raw
body as one row and answers a constant. ``bench/intake.py`` drives it side by
side with the real endpoint, through the same gunicorn, middleware and
database, so the ratio between them is what the product adds. Served only by
``bench.urls`` (``DJANGO_SETTINGS_MODULE=bench.settings``), never in
production.
"""

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from bench.models import FloorRow

FLOOR_REPLY = b'{"ok":true}'


@csrf_exempt
@require_POST
def floor(request: HttpRequest) -> HttpResponse:
    FloorRow.objects.create(body=request.body)
    return HttpResponse(FLOOR_REPLY, content_type="application/json")
