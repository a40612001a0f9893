"""Time to advise the whole evaluation workload, on PostgreSQL and on SQLite.

Builds the shop workload of ``tests/dbadvisor/workload/shop.py`` (700 000
rows, 36 queries) in a throwaway PostgreSQL 15 (started as the tests start
it, ``tests/pg.py``) and in a temporary SQLite file, then times
``advise()`` on each (best of a few runs), with the precision and recall
against the answer key. Run: ``python bench/db_advise.py``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import pg
from tests.dbadvisor.workload import shop

from perfpilot.dbadvisor.advisor import Advice, advise
from perfpilot.dbadvisor.database import open_database
from perfpilot.dbadvisor.sqlfile import split_sql
from perfpilot.dbadvisor.workload import group_statements

REPEATS = 3


def timed(run: Callable[[], Advice]) -> tuple[float, Advice]:
    """Best wall time in seconds of ``REPEATS`` calls, and the last result."""
    best = float("inf")
    result = None
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    assert result is not None
    return best, result


def advise_dsn(dsn: str, kind: str) -> Advice:
    """Advise the shop workload on ``dsn``."""
    workload = group_statements(split_sql(shop.workload_sql()), dialect=kind, source="sql")
    with open_database(dsn) as db:
        return advise(db, workload)


def report(kind: str, build_s: float, seconds: float, advice: Advice) -> None:
    """Print one line of results."""
    score = shop.score(advice, kind)
    print(
        f"{kind:<10} {len(advice.outcomes)} queries, {len(advice.recommendations)} indexes: "
        f"advise {seconds:.2f} s (best of {REPEATS}; data built in {build_s:.1f} s), "
        f"precision {score.precision:.2f}, recall {score.recall:.2f}"
    )


def main() -> None:
    """Build both databases, advise, print one line each."""
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "shop.db")
        start = time.perf_counter()
        shop.create_sqlite(path)
        build = time.perf_counter() - start
        seconds, advice = timed(lambda: advise_dsn(path, "sqlite"))
        report("sqlite", build, seconds, advice)
    why = pg.available()
    if why is not None:
        print(f"postgresql skipped: {why}")
        return
    import psycopg

    with pg.postgres_server() as server:
        start = time.perf_counter()
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            shop.create_postgres(conn)
        build = time.perf_counter() - start
        seconds, advice = timed(lambda: advise_dsn(server.dsn, "postgresql"))
        report("postgresql", build, seconds, advice)


if __name__ == "__main__":
    main()
