"""``db.lists``: one-parameter IN lists and set-based many-row updates and inserts, on
both databases, must store and match exactly what the ordinary statements would."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, insert, select

from echelon.db.lists import insert_rows, one_of, update_rows
from echelon.db.tables import workspaces

BASE = datetime(2026, 11, 11, 4, 0, tzinfo=UTC)


def seed(engine: Engine, count: int) -> list[int]:
    with engine.begin() as conn:
        conn.execute(workspaces.delete())
        conn.execute(
            insert(workspaces),
            [
                {"slug": f"w{i}", "name": f"店{i}", "timezone": "Asia/Shanghai", "created_at": BASE}
                for i in range(count)
            ],
        )
        return list(conn.execute(select(workspaces.c.id).order_by(workspaces.c.id)).scalars())


TEXT = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))  # storable text
names = st.one_of(st.none(), st.text(TEXT, min_size=1, max_size=16))
moments = st.integers(0, 10**9).map(lambda us: BASE + timedelta(microseconds=us))
rows = st.lists(
    st.tuples(st.text(TEXT, min_size=1, max_size=50), names, moments), min_size=1, max_size=30
)


def on_rows(test: Callable[..., None]) -> Callable[..., None]:
    """A property over lists of (name, signature, time) rows, against the engine fixture."""
    checked = given(data=rows)(test)
    return settings(
        max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )(checked)


@on_rows
def test_update_rows_stores_what_an_update_would(
    engine: Engine, data: list[tuple[str, str | None, datetime]]
) -> None:
    ids = seed(engine, len(data) + 2)
    rows = [
        {"id": i, "name": name, "signature": signature, "created_at": at}
        for i, (name, signature, at) in zip(ids, data, strict=False)
    ]
    with engine.begin() as conn:
        update_rows(conn, workspaces, rows)
        stored = {
            row.id: {
                "id": row.id,
                "name": row.name,
                "signature": row.signature,
                "created_at": row.created_at,
            }
            for row in conn.execute(select(workspaces))
        }
    for row in rows:
        assert stored[row["id"]] == row
    untouched = ids[len(data) :]
    assert all(stored[i]["name"].startswith("店") for i in untouched)


def test_one_of_matches_like_in(engine: Engine) -> None:
    ids = seed(engine, 5)
    wanted = [ids[0], ids[3], 999_999]
    with engine.connect() as conn:
        found = conn.execute(
            select(workspaces.c.id).where(one_of(conn, workspaces.c.id, wanted))
        ).scalars()
        assert sorted(found) == [ids[0], ids[3]]
        slugs = conn.execute(
            select(workspaces.c.slug).where(one_of(conn, workspaces.c.slug, ["w1", "x"], name="s"))
        ).scalars()
        assert list(slugs) == ["w1"]


def test_update_rows_touches_only_the_rows_its_condition_admits(engine: Engine) -> None:
    ids = seed(engine, 4)
    rows = [{"id": i, "name": f"新{i}"} for i in ids]
    with engine.begin() as conn:
        updated = update_rows(
            conn, workspaces, rows, where=workspaces.c.slug.in_(("w1", "w2", "none"))
        )
        names = {
            slug: name for slug, name in conn.execute(select(workspaces.c.slug, workspaces.c.name))
        }
    assert updated == 2
    assert names == {"w0": "店0", "w1": f"新{ids[1]}", "w2": f"新{ids[2]}", "w3": "店3"}


@on_rows
def test_insert_rows_stores_what_an_insert_would_and_passes_over_conflicts(
    engine: Engine, data: list[tuple[str, str | None, datetime]]
) -> None:
    seed(engine, 2)  # slugs w0 and w1 are taken
    rows = [
        {"slug": f"w{i}", "name": name, "timezone": "Asia/Shanghai", "signature": signature,
         "created_at": at}
        for i, (name, signature, at) in enumerate(data)
    ]  # fmt: skip
    with engine.begin() as conn:
        inserted = insert_rows(conn, workspaces, [*rows, *rows[2:3]])  # w2 twice: once
        stored = {
            row.slug: {"slug": row.slug, "name": row.name, "timezone": row.timezone,
                       "signature": row.signature, "created_at": row.created_at}
            for row in conn.execute(select(workspaces))
        }  # fmt: skip
    assert inserted == max(0, len(data) - 2)
    for row in rows[2:]:
        assert stored[str(row["slug"])] == row
    assert (stored["w0"]["name"], stored["w1"]["name"]) == ("店0", "店1")  # kept as they were
