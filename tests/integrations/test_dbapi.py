"""The DB-API wrapper on sqlite3: statements and commits through a breaker."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

import pytest

from cbcontrol import BreakerConfig, CircuitBreaker, CircuitOpenError, State
from cbcontrol.integrations.dbapi import BreakerConnection, caller_errors

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """A database file with an orders table."""
    path = tmp_path / "orders.db"
    with sqlite3.connect(path) as setup:
        setup.execute("CREATE TABLE orders (id TEXT PRIMARY KEY, total INTEGER)")
    setup.close()
    return path


@pytest.fixture
def breaker() -> CircuitBreaker:
    """Opens after two failures."""
    return CircuitBreaker("orders-db", BreakerConfig(max_failures=2, reset_timeout=60))


@pytest.fixture
def db(path: Path, breaker: CircuitBreaker) -> Iterator[BreakerConnection]:
    """The wrapped connection; locking fails at once instead of waiting."""
    connection = sqlite3.connect(path, timeout=0)
    yield BreakerConnection(connection, breaker)
    connection.close()


@pytest.fixture
def locked(path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection holding the database's write lock: the database is busy."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    yield holder
    holder.execute("ROLLBACK")
    holder.close()


def test_statements_and_commits_are_calls(
    db: BreakerConnection, breaker: CircuitBreaker, path: Path
) -> None:
    """execute, executemany, a cursor's execute and commit each count as a call."""
    db.execute("INSERT INTO orders VALUES (?, ?)", ("o-1", 10))
    db.executemany("INSERT INTO orders VALUES (?, ?)", [("o-2", 20), ("o-3", 30)])
    db.commit()
    rows = db.cursor().execute("SELECT id FROM orders ORDER BY id").fetchall()

    with sqlite3.connect(path) as other:
        stored = other.execute("SELECT count(*) FROM orders").fetchone()[0]
    other.close()

    assert [("o-1",), ("o-2",), ("o-3",)] == rows
    assert 3 == stored
    assert (4, 0) == (breaker.snapshot().successes, breaker.snapshot().failures)


def test_a_busy_database_opens_the_breaker(
    db: BreakerConnection,
    breaker: CircuitBreaker,
    locked: sqlite3.Connection,
) -> None:
    """OperationalError (database is locked) counts; once open, nothing is sent."""
    for _ in range(2):
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            db.execute("INSERT INTO orders VALUES ('o-1', 1)")

    with pytest.raises(CircuitOpenError):
        db.execute("SELECT 1")

    assert State.OPEN is breaker.state
    assert (2, 1) == (breaker.snapshot().failures, breaker.snapshot().rejections)


def test_a_fallback_never_answers_for_the_database(
    path: Path, locked: sqlite3.Connection
) -> None:
    """While open, statements and commits raise even when the breaker has fallbacks:
    a fallback's answer would make a write that never happened look done."""
    breaker = CircuitBreaker(
        "orders-db",
        BreakerConfig(max_failures=1, reset_timeout=60, fallback="cache"),
        static_fallback="served",
        fallback=lambda *args: "served",
    )
    connection = sqlite3.connect(path, timeout=0)
    db = BreakerConnection(connection, breaker)
    db.execute("SELECT 1")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        db.execute("INSERT INTO orders VALUES ('o-1', 1)")

    with pytest.raises(CircuitOpenError):
        db.execute("SELECT 1")
    with pytest.raises(CircuitOpenError):
        db.commit()
    connection.close()

    assert (2, 0) == (breaker.snapshot().rejections, breaker.snapshot().fallbacks)


def test_errors_of_the_caller_do_not_count(
    db: BreakerConnection, breaker: CircuitBreaker
) -> None:
    """An IntegrityError is raised as it is, and the database answered: a success."""
    db.execute("INSERT INTO orders VALUES ('o-1', 1)")

    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        db.execute("INSERT INTO orders VALUES ('o-1', 2)")

    assert (2, 0) == (breaker.snapshot().successes, breaker.snapshot().failures)


def test_the_with_block_commits_through_the_breaker(
    db: BreakerConnection, breaker: CircuitBreaker, path: Path
) -> None:
    """``with db:`` commits on success (one more call) and rolls back on error."""
    with db:
        db.execute("INSERT INTO orders VALUES ('o-1', 1)")
    with pytest.raises(KeyError):
        insert_then_fail(db)

    with sqlite3.connect(path) as other:
        ids = other.execute("SELECT id FROM orders").fetchall()
    other.close()

    assert [("o-1",)] == ids
    assert 3 == breaker.snapshot().successes


def insert_then_fail(db: BreakerConnection) -> None:
    """Insert in a ``with`` block that then raises."""
    with db:
        db.execute("INSERT INTO orders VALUES ('o-2', 2)")
        raise KeyError


def test_failure_on_replaces_the_rule(path: Path, breaker: CircuitBreaker) -> None:
    """With failure_on=IntegrityError, a duplicate key is a failure after all."""
    connection = sqlite3.connect(path)
    db = BreakerConnection(connection, breaker, failure_on=sqlite3.IntegrityError)
    db.execute("INSERT INTO orders VALUES ('o-1', 1)")

    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO orders VALUES ('o-1', 2)")
    connection.close()

    assert 1 == breaker.snapshot().failures


def test_caller_errors_come_from_the_driver() -> None:
    """sqlite3's errors of the caller are found from the connection."""
    connection = sqlite3.connect(":memory:")

    found = caller_errors(connection)
    connection.close()

    assert (
        sqlite3.IntegrityError,
        sqlite3.ProgrammingError,
        sqlite3.DataError,
        sqlite3.NotSupportedError,
    ) == found
