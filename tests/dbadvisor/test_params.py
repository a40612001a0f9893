"""Filling placeholders with values sampled from the tables."""

from __future__ import annotations

from typing import Any

import pytest

from perfpilot.dbadvisor.params import Unresolved, fill_placeholders, has_placeholders

COLUMNS = {
    "orders": ("id", "customer_id", "status", "created_at"),
    "customers": ("id", "name"),
}
SAMPLES: dict[tuple[str, str], list[Any]] = {
    ("orders", "customer_id"): list(range(1, 102)),  # median 51, p99 100, p01 2
    ("orders", "status"): ["a", "b", "b", "b", "c"],
    ("orders", "created_at"): [f"2024-01-{d:02d}" for d in range(1, 32)],
    ("customers", "name"): ["Alice", "Bob", "Carol"],
}


def sampler(table: str, column: str) -> list[Any]:
    return SAMPLES.get((table, column), [])


def test_equality_in_lists_and_like_prefixes() -> None:
    sql = "SELECT * FROM orders WHERE customer_id = ? AND status IN (?) LIMIT ? OFFSET ?"
    assert fill_placeholders(sql, "sqlite", sampler, COLUMNS) == (
        "SELECT * FROM orders WHERE customer_id = 51 AND status IN ('b') LIMIT 20 OFFSET 0"
    )
    like = fill_placeholders(
        "select id from customers where name like $1", "postgresql", sampler, COLUMNS
    )
    assert like == "SELECT id FROM customers WHERE name LIKE 'Bob%'"


def test_a_limit_takes_the_rows_the_app_saw_per_call() -> None:
    sql = "SELECT * FROM orders ORDER BY id LIMIT ?"
    assert fill_placeholders(sql, "sqlite", sampler, COLUMNS, limit=15000).endswith("LIMIT 15000")
    assert fill_placeholders(sql, "sqlite", sampler, COLUMNS).endswith("LIMIT 20")


def test_ranges_are_narrow_when_both_bounds_and_recent_or_early_when_one() -> None:
    both = fill_placeholders(
        "select * from orders where created_at >= %s and created_at < %s",
        "postgresql",
        sampler,
        COLUMNS,
    )
    assert (
        both
        == "SELECT * FROM orders WHERE created_at >= '2024-01-16' AND created_at < '2024-01-16'"
    )
    lower = fill_placeholders(
        "select * from orders where ? < customer_id", "sqlite", sampler, COLUMNS
    )
    assert lower == "SELECT * FROM orders WHERE 100 < customer_id"
    upper = fill_placeholders(
        "select * from orders where customer_id <= ?", "sqlite", sampler, COLUMNS
    )
    assert upper == "SELECT * FROM orders WHERE customer_id <= 2"
    between = fill_placeholders(
        "select * from orders o where o.customer_id between ? and ?", "sqlite", sampler, COLUMNS
    )
    assert between == "SELECT * FROM orders AS o WHERE o.customer_id BETWEEN 51 AND 52"


def test_placeholders_that_cannot_be_filled_say_why() -> None:
    with pytest.raises(Unresolved, match="not with a column"):
        fill_placeholders(
            "select * from orders where lower(status) = ?", "sqlite", sampler, COLUMNS
        )
    with pytest.raises(Unresolved, match="which table"):
        fill_placeholders(
            "select * from orders join customers on customers.id = orders.customer_id where id = ?",
            "sqlite",
            sampler,
            COLUMNS,
        )
    with pytest.raises(Unresolved, match="cannot tell which column"):
        fill_placeholders("select ? from orders", "sqlite", sampler, COLUMNS)
    with pytest.raises(Unresolved, match="no values"):
        fill_placeholders("select * from customers where id = ?", "sqlite", sampler, COLUMNS)


def test_has_placeholders() -> None:
    assert has_placeholders("select * from t where a = $1", "postgresql")
    assert has_placeholders("select * from t where a = ?", "sqlite")
    assert not has_placeholders("select * from t where a = '?'", "sqlite")
    assert not has_placeholders("not sql at all (", "sqlite")
