"""A small blog schema for the CLI tests of the database advisor, on SQLite and PostgreSQL.

``posts`` has 60 000 (SQLite) or 100 000 (PostgreSQL) rows; ``posts.user_id``
references ``users`` and has no index (the advisor recommends one, the health
checks report the foreign key); ``posts.phone`` is text (compared with a number
it is an implicit cast); PostgreSQL also has a duplicate index on ``title``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.pg import PostgresServer

#: The password tests put in DSNs: the server trusts local connections, so any
#: password is accepted, and none may ever be shown.
SECRET = "s3cr3t-pw"


def create_sqlite(path: Path) -> Path:
    """The blog in a new SQLite file at ``path``."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute(
        "CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id), "
        "title TEXT, phone TEXT)"
    )
    conn.executemany(
        "INSERT INTO posts VALUES (?, ?, ?, ?)",
        ((i, i % 9000, f"t{i}", str(i)) for i in range(60_000)),
    )
    conn.commit()
    conn.close()
    return path


def create_postgres(server: PostgresServer, name: str) -> str:
    """The blog in a new PostgreSQL database ``name`` (replaced if it exists); its DSN
    with :data:`SECRET` as the password."""
    import psycopg

    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    dsn = server.dsn_for(name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id int PRIMARY KEY, name text)")
        conn.execute(
            "CREATE TABLE posts (id int PRIMARY KEY, user_id int REFERENCES users, "
            "title text, phone varchar(20))"
        )
        conn.execute("INSERT INTO users SELECT g, 'u' FROM generate_series(0, 8999) g")
        conn.execute(
            "INSERT INTO posts SELECT g, g % 9000, 't', g::text FROM generate_series(1, 100000) g"
        )
        conn.execute("CREATE INDEX posts_title ON posts (title)")
        conn.execute("CREATE INDEX posts_title_again ON posts (title)")
        conn.execute("VACUUM ANALYZE")
    return dsn.replace("perfpilot@", f"perfpilot:{SECRET}@")
