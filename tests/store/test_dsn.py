"""Connection strings without their secrets: URLs and libpq keyword/value DSNs."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfpilot.errors import StoreError
from perfpilot.store import open_store
from perfpilot.store.dsn import (
    display_dsn,
    is_postgres_dsn,
    keyword_pairs,
    redact_credentials,
    redact_dsn,
    scrub,
    secrets_of,
)
from perfpilot.store.sqlite import SQLiteStore

KEYWORDS = "host=127.0.0.1 port=1 user=u password=secret dbname=db"


def test_keyword_dsns_are_postgres_and_paths_are_not() -> None:
    assert keyword_pairs(KEYWORDS) == [
        ("host", "127.0.0.1"),
        ("port", "1"),
        ("user", "u"),
        ("password", "secret"),
        ("dbname", "db"),
    ]
    assert keyword_pairs(r"dbname = perf password = 'it\'s a b'") == [
        ("dbname", "perf"),
        ("password", "it's a b"),
    ]
    for dsn in (KEYWORDS, "dbname=perf", "  host=db  ", "postgresql://h/db", "postgres+x://h/d"):
        assert is_postgres_dsn(dsn), dsn
    for path in ("shop.db", "a=b", "./host=a.db", "sqlite:///x.db", "data/x=1.db", ":memory:"):
        assert not is_postgres_dsn(path), path


def test_keyword_dsns_lose_their_password_everywhere() -> None:
    assert redact_dsn(KEYWORDS) == "host=127.0.0.1 port=1 user=u password=*** dbname=db"
    assert display_dsn(KEYWORDS) == "host=127.0.0.1 port=1 user=u dbname=db"
    assert secrets_of(KEYWORDS) == ["secret"]
    quoted = "host=db password='two words' sslpassword=k2"
    assert "two" not in display_dsn(quoted) and "k2" not in display_dsn(quoted)
    assert set(secrets_of(quoted)) == {"two words", "k2"}
    assert scrub("auth failed for 'two words'", secrets_of(quoted)) == "auth failed for '***'"


def test_redact_credentials_masks_urls_queries_and_keywords() -> None:
    assert redact_credentials(f"no store at {KEYWORDS}") == (
        "no store at host=127.0.0.1 port=1 user=u password=*** dbname=db"
    )
    assert redact_credentials(f"open {KEYWORDS!r} failed") == (
        "open 'host=127.0.0.1 port=1 user=u password=*** dbname=db' failed"
    )
    assert redact_credentials(r"x password = 'a b\' c' dbname=y") == "x password = *** dbname=y"
    assert redact_credentials("postgresql://u:pw@h/db?sslmode=require&password=q1&x=1") == (
        "postgresql://u:***@h/db?sslmode=require&password=***&x=1"
    )
    assert redact_credentials("PASSWORD=s1 sslpassword=s2") == "PASSWORD=*** sslpassword=***"
    assert redact_credentials("the passwords = none here") == "the passwords = none here"


def test_open_store_takes_keyword_dsns_as_postgres_without_showing_the_password() -> None:
    with pytest.raises(StoreError) as raised:
        open_store(KEYWORDS, create=False)
    message = str(raised.value)
    assert message.startswith("cannot connect to host=127.0.0.1 port=1 user=u dbname=db"), message
    assert "secret" not in message


def test_sqlite_store_messages_mask_a_password_in_the_path(tmp_path: Path) -> None:
    path = tmp_path / "x password=secret"
    with pytest.raises(StoreError) as raised:
        SQLiteStore(path, create=False)
    assert "secret" not in str(raised.value) and "password=***" in str(raised.value)
    with pytest.raises(StoreError) as raised:
        open_store(f"{tmp_path}/x password=secret", create=False)
    assert "secret" not in str(raised.value)
