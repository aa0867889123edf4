"""The property that makes a segment trustworthy: on both databases, the members the
compiled SQL finds are exactly those a plain-Python evaluation of the same definition
finds, over generated definitions and generated contacts, events, messages and replies.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from segments_support import Evaluation, World, definitions, presets, worlds, write_world
from sqlalchemy import Engine

from echelon.segments.models import definition_json, parse_definition
from echelon.segments.service import count_segment, create_segment, list_members
from echelon.workspaces.service import create_workspace

_slugs = itertools.count()


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(world=worlds(), data=st.data())
def test_compiled_members_equal_the_python_evaluation(
    engine: Engine, world: World, data: st.DataObject
) -> None:
    # A fresh workspace per example, beside a decoy one holding the same numbers, all
    # suppressed and tagged: a sub-query that forgot its workspace would show.
    workspace, _ = create_workspace(engine, slug=f"w{next(_slugs)}", name="w")
    decoy, _ = create_workspace(engine, slug=f"d{next(_slugs)}", name="d")
    with engine.begin() as conn:
        ids = write_world(conn, workspace.id, world)
        write_world(conn, decoy.id, _everything_suppressed(world))
    saved: dict[int | str, dict[str, Any]] = {}
    if data.draw(st.booleans(), label="save a segment to refer to"):
        inner = data.draw(definitions([]), label="saved definition")
        create_segment(
            engine, workspace_id=workspace.id, name="saved", definition=inner, now=world.now
        )
        saved["saved"] = inner
    drawn = data.draw(st.lists(definitions(list(saved)), min_size=2, max_size=4))
    _compare(engine, workspace.id, ids, world, saved, drawn)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(world=worlds(), chosen=st.lists(presets(), min_size=3, max_size=6))
def test_every_preset_matches_the_python_evaluation(
    engine: Engine, world: World, chosen: list[dict[str, Any]]
) -> None:
    # The built-in presets (with parameters that make them bite in a small world), each
    # alone and all of them inside one ``and`` / ``or``, where sub-queries are shared.
    workspace, _ = create_workspace(engine, slug=f"p{next(_slugs)}", name="p")
    with engine.begin() as conn:
        ids = write_world(conn, workspace.id, world)
    _compare(engine, workspace.id, ids, world, {}, [*chosen, {"and": chosen}, {"or": chosen}])


def _compare(
    engine: Engine,
    workspace_id: int,
    ids: list[int],
    world: World,
    saved: dict[int | str, dict[str, Any]],
    drawn: list[dict[str, Any]],
) -> None:
    evaluation = Evaluation(world, saved)
    for definition in drawn:
        node = parse_definition(definition)  # generated definitions are all valid
        assert parse_definition(definition_json(node)) == node
        expected = {ids[i] for i in evaluation.members(definition)}
        found = list_members(
            engine,
            workspace_id=workspace_id,
            definition=definition,
            now=world.now,
            limit=10_000,
        )
        assert {m.id for m in found} == expected, definition
        counted = count_segment(
            engine, workspace_id=workspace_id, definition=definition, now=world.now
        )
        assert counted.total == len(expected)


def _everything_suppressed(world: World) -> World:
    return World(
        now=world.now,
        people=world.people,
        suppressed={(p.phone, k) for p in world.people for k in ("opt_out", "dnc")},
        happenings=world.happenings,
        sent=world.sent,
        replies=world.replies,
        clicks=world.clicks,
    )
