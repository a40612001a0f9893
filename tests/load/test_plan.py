"""What a run keeps of its plan: credentials in headers and URL queries are redacted."""

from __future__ import annotations

from perfpilot.load.plan import redact_url
from perfpilot.load.scenario import plan_from_url


def test_redact_url_masks_sensitive_query_values_keeping_the_names() -> None:
    sensitive = (
        "api_key", "apikey", "key", "token", "access_token", "auth", "secret", "password",
        "passwd", "signature", "sig", "client_secret",
    )  # fmt: skip
    for name in (*sensitive, "API_KEY", "Token", "api%5Fkey"):
        url = f"http://h/a?page=2&{name}=S3CRET&next=x#top"
        assert redact_url(url) == f"http://h/a?page=2&{name}=***&next=x#top", name
    assert (
        redact_url("http://h/a?keys=1&monkey=2&tokens=3") == "http://h/a?keys=1&monkey=2&tokens=3"
    )
    assert redact_url("http://h/a?key=&sig=zz;x=1") == "http://h/a?key=&sig=***;x=1"
    assert redact_url("http://u:pw@h/a") == "http://u:***@h/a"
    assert redact_url("GET /orders") == "GET /orders"


def test_the_plan_sends_the_real_url_but_describes_a_redacted_one() -> None:
    url = "http://127.0.0.1:8000/api?api_key=LOADKEYSECRET&q=1"
    plan = plan_from_url(url, headers=["X-Api-Key: HEADERSECRET"])
    assert plan.requests[0].url == url  # what the engine sends
    assert plan.requests[0].name == "GET /api"
    assert plan.name == "http://127.0.0.1:8000/api?api_key=***&q=1"
    described = plan.describe()
    assert "SECRET" not in repr(described)
    assert described["requests"][0]["url"] == "http://127.0.0.1:8000/api?api_key=***&q=1"
    assert plan_from_url(url, name="mine").name == "mine"
