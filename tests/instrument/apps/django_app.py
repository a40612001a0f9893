"""A Django project in one module: settings, URLs, views; instrumented with one line.

Served by gunicorn with Django's WSGI handler (``tests.instrument.apps.django_app:application``),
or by uvicorn with its ASGI handler when ``PERFPILOT_TEST_DJANGO=asgi``.
"""

from __future__ import annotations

import os

from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="perfpilot-tests-only",
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    TEMPLATES=[],
    DATABASES={},
    LOGGING_CONFIG=None,
    USE_TZ=True,
)

from django.core.wsgi import get_wsgi_application  # noqa: E402  (after settings)
from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402

import perfpilot.instrument  # noqa: E402
from tests.instrument.apps import FLUSH_INTERVAL_S, order_items, store  # noqa: E402


def order(request: HttpRequest, order_id: int) -> JsonResponse:
    return JsonResponse({"id": order_id, "pid": os.getpid()})


def items(request: HttpRequest, order_id: int) -> JsonResponse:
    return JsonResponse(order_items(order_id))


def boom(request: HttpRequest) -> JsonResponse:
    raise RuntimeError("boom")


urlpatterns = [
    path("orders/<int:order_id>", order),
    path("orders/<int:order_id>/items", items),
    path("boom", boom),
]

if os.environ.get("PERFPILOT_TEST_DJANGO") == "asgi":
    from django.core.asgi import get_asgi_application

    application = get_asgi_application()
else:
    application = get_wsgi_application()
application = perfpilot.instrument(application, store=store(), flush_interval_s=FLUSH_INTERVAL_S)
