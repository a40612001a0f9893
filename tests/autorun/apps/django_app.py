"""A Django project in one module that knows nothing of perfpilot.

Served via ``perfpilot run`` by gunicorn (``tests.autorun.apps.django_app:application``,
Django's WSGI handler), or by uvicorn with the ASGI handler when
``PERFPILOT_TEST_DJANGO=asgi``, or by ``python -m tests.autorun.apps.django_app
runserver`` (Django's own development server).
"""

from __future__ import annotations

import os
import sys

import requests
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

from django.http import HttpRequest, JsonResponse  # noqa: E402  (after settings)
from django.urls import path  # noqa: E402

from tests.autorun.apps import CALLS_PER_REQUEST, order_items, upstream  # noqa: E402

session = requests.Session()
session.trust_env = False


def order(request: HttpRequest, order_id: int) -> JsonResponse:
    return JsonResponse({"id": order_id, "pid": os.getpid()})


def items(request: HttpRequest, order_id: int) -> JsonResponse:
    for _ in range(CALLS_PER_REQUEST):
        session.get(upstream("/json"), timeout=10).raise_for_status()
    return JsonResponse(order_items(order_id))


def boom(request: HttpRequest) -> JsonResponse:
    raise RuntimeError("boom")


urlpatterns = [
    path("orders/<int:order_id>", order),
    path("orders/<int:order_id>/items", items),
    path("boom", boom),
]

if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
elif os.environ.get("PERFPILOT_TEST_DJANGO") == "asgi":
    from django.core.asgi import get_asgi_application

    application = get_asgi_application()
else:
    from django.core.wsgi import get_wsgi_application

    application = get_wsgi_application()
