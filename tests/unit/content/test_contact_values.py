"""ContactValues: the planner's per-row reading of a template's variables gives exactly
what contact_variables gives, from only the columns it needs."""

from __future__ import annotations

from datetime import date
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from echelon.audience.phone import Carrier
from echelon.content.preview import ContactValues, contact_variables

PROFILE = ("phone", "name", "gender", "birthday", "province", "city", "carrier", "tags")
ATTRIBUTE_NAMES = ("会员等级", "name", "city", "gender", "tags", "phone", "attributes", "level")

_blankish = st.sampled_from(["", "  ", "\t"])
_json_value = st.one_of(
    st.none(),
    _blankish,
    st.text(max_size=4),
    st.integers(-3, 3),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.text(max_size=2), max_size=2),
)
_maybe_text = st.one_of(st.none(), _blankish, st.text(min_size=1, max_size=4))

contact_rows = st.fixed_dictionaries(
    {
        "id": st.integers(1, 10**6),
        "phone": st.sampled_from(["+8613800138000", "+14155550123"]),
        "name": _maybe_text,
        "gender": st.sampled_from([None, "male", "female"]),
        "birthday": st.one_of(st.none(), st.dates(date(1950, 1, 1), date(2010, 12, 31))),
        "birthday_lunar": st.booleans(),
        "province": _maybe_text,
        "city": _maybe_text,
        "carrier": st.one_of(st.none(), st.sampled_from([c.value for c in Carrier])),
        "attributes": st.one_of(
            st.none(), st.dictionaries(st.sampled_from(ATTRIBUTE_NAMES), _json_value)
        ),
        "tags": st.lists(st.sampled_from(["VIP", "新客"]), max_size=2, unique=True),
    }
)


def _typed(values: Any) -> list[tuple[type, Any]]:
    # 1 == True == 1.0 in Python, but they render differently: compare types as well.
    return [(type(value), value) for value in values]


@given(contact_rows, st.sets(st.sampled_from((*PROFILE, "attributes", *ATTRIBUTE_NAMES))))
def test_values_are_those_of_contact_variables(row: dict[str, Any], names: set[str]) -> None:
    reader = ContactValues(names)
    columns = [row[column] for column in reader.columns]
    attributes = row["attributes"] or {}
    if reader.attribute_keys is not None:  # only what the planner reads
        attributes = {k: v for k, v in attributes.items() if k in reader.attribute_keys}
    got = reader.read(columns, attributes, row["tags"] if reader.needs_tags else ())
    expected = contact_variables(row)
    assert _typed(got) == _typed(expected.get(name) for name in reader.names)


def test_only_what_a_template_needs_is_read() -> None:
    # Always the id, the number, and the carrier and province every message records.
    always = ("id", "phone", "carrier", "province")
    phone = ContactValues({"phone"})
    assert (phone.columns, phone.attribute_keys) == (always, ())
    tags = ContactValues({"tags"})
    assert tags.needs_tags and tags.columns == always
    # A missing profile field falls back to the attribute of the same name.
    named = ContactValues({"name", "会员等级", "birthday", "province"})
    assert named.columns == (*always, "birthday", "birthday_lunar", "name")
    assert named.attribute_keys == ("birthday", "name", "province", "会员等级")
    assert ContactValues({"attributes", "city"}).attribute_keys is None
