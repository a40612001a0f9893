import pytest

from perfpilot.analyze.sqlshape import in_list_form, shape


@pytest.mark.parametrize(
    ("sql", "select", "limited", "star", "aggregate", "lookup"),
    [
        ("SELECT id FROM customers WHERE email = ?", True, False, False, False, ("email",)),
        ("SELECT * FROM products ORDER BY id LIMIT ?", True, True, True, False, ()),
        ("SELECT p.* FROM products AS p WHERE p.id = ?", True, False, True, False, ("id",)),
        ("SELECT COUNT(*) FROM orders", True, False, False, True, ()),
        ("SELECT a FROM t WHERE (a = ? AND b = ?)", True, False, False, False, ("a", "b")),
        ("SELECT a FROM t WHERE a = ? OR b = ?", True, False, False, False, ()),
        ("SELECT a FROM t WHERE a > ?", True, False, False, False, ()),
        (
            "SELECT o.id FROM orders AS o JOIN c ON c.id = o.cid WHERE o.x = ?",
            True,
            False,
            False,
            False,
            (),
        ),
        ("INSERT INTO t (a) VALUES (?)", False, False, False, False, ()),
        ("<unparsed sql>", False, False, False, False, ()),
    ],
)
def test_shape(
    sql: str, select: bool, limited: bool, star: bool, aggregate: bool, lookup: tuple[str, ...]
) -> None:
    facts = shape(sql, "sqlite")
    assert (facts.select, facts.limited, facts.star, facts.aggregate_only) == (
        select,
        limited,
        star,
        aggregate,
    )
    assert facts.lookup_columns == lookup


def test_in_list_form_adds_the_key_column() -> None:
    assert (
        in_list_form("SELECT qty FROM order_items WHERE order_id = ?", "sqlite")
        == "SELECT order_id, qty FROM order_items WHERE order_id IN (?, ?, ?)"
    )
    assert in_list_form("SELECT a FROM t WHERE a = ? AND b = ?") is None
    assert in_list_form("DELETE FROM t WHERE a = ?") is None
