"""The optional C extension; everything else is in pyproject.toml.

``perfpilot.instrument._speedups`` times sqlite3's ``execute`` and
``fetchone`` in C. It is optional: without a C compiler the install goes on
and perfpilot uses the same methods in Python (see ``sql_sqlite``).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "perfpilot.instrument._speedups",
            ["src/perfpilot/instrument/_speedups.c"],
            optional=True,
        )
    ]
)
