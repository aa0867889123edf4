"""The message catalogue: both languages complete, every key a page uses present, and
no visible text in a template that bypasses the catalogue."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from echelon.access.models import PERMISSIONS, Role
from echelon.analytics.models import RATE_METRICS
from echelon.analytics.webhooks import EVENTS
from echelon.audience.importing import CONTACT_COLUMNS
from echelon.audience.phone import Carrier
from echelon.campaigns.models import STATUS_LABELS as CAMPAIGN_STATUSES
from echelon.compliance.rules import BlockReason
from echelon.console.catalogue import EN, ZH
from echelon.console.forms import KIND_FIELDS
from echelon.console.i18n import Problem, Translator, choose_language
from echelon.console.pages.segments import ATTRIBUTE_FIELDS, CHOICES
from echelon.content.templates import STATUS_LABELS as TEMPLATE_STATUSES
from echelon.content.words import Category
from echelon.db.outbox import MESSAGE_STATUSES
from echelon.journeys.builtins import BUILTINS
from echelon.journeys.models import CONDITION_KINDS, STEP_TYPES, TRIGGER_TYPES
from echelon.journeys.service import EXIT_LABELS
from echelon.journeys.service import STATUS_LABELS as JOURNEY_STATUSES
from echelon.segments.presets import PRESETS

CONSOLE = Path(__file__).resolve().parents[3] / "src" / "echelon" / "console"
TEMPLATES = sorted((CONSOLE / "templates").rglob("*.html"))
SOURCES = sorted(CONSOLE.rglob("*.py"))
# t("key"), t.label("prefix", …) and Problem("key") with a literal key.
_STATIC_KEY = re.compile(
    r"""(?:\bt|Translator\([^)]*\)|Problem)\(\s*["']([a-z_]+\.[a-z_0-9.:]+)["']\s*[,)]"""
)
_CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
_JINJA = re.compile(r"{{.*?}}|{%.*?%}|{#.*?#}", re.S)


def test_both_languages_hold_the_same_keys() -> None:
    assert set(ZH) == set(EN)
    assert all(value.strip() for value in [*ZH.values(), *EN.values()])


def test_every_literal_key_used_by_a_page_is_in_the_catalogue() -> None:
    used = set()
    for path in [*TEMPLATES, *SOURCES]:
        used |= set(_STATIC_KEY.findall(path.read_text(encoding="utf-8")))
    assert used, "the pattern found no keys at all"
    assert sorted(used - set(ZH)) == []


@pytest.mark.parametrize(
    ("prefix", "values"),
    [
        ("status", [*MESSAGE_STATUSES, *CAMPAIGN_STATUSES, *TEMPLATE_STATUSES]),
        ("block", [r.value for r in BlockReason]),
        ("carrier", ["all", *(c.value for c in Carrier)]),
        ("role", [r.value for r in Role]),
        ("perm", PERMISSIONS),
        ("metric", RATE_METRICS),
        ("judgement", ["excellent", "pass", "fail", "insufficient"]),
        ("word_category", [c.value for c in Category]),
        ("webhook_event", EVENTS),
        ("field", list(CONTACT_COLUMNS)),
        ("seg.kind", list(KIND_FIELDS)),
        ("seg.f", sorted({f for fields in KIND_FIELDS.values() for f in fields})),
        ("seg.field", [*ATTRIBUTE_FIELDS, "custom"]),
        ("preset", list(PRESETS)),
        ("preset_about", list(PRESETS)),
        ("step", STEP_TYPES),
        ("trigger", TRIGGER_TYPES),
        ("condition", CONDITION_KINDS),
        ("journey_status", list(JOURNEY_STATUSES)),
        ("journey_exit", list(EXIT_LABELS)),
        ("builtin", list(BUILTINS)),
        ("builtin_about", list(BUILTINS)),
    ],
)
def test_every_coded_value_has_a_label(prefix: str, values: list[str]) -> None:
    assert [v for v in values if f"{prefix}.{v}" not in ZH] == []


def test_every_builder_choice_has_a_label() -> None:
    missing = [
        f"seg.{key.split('.')[1]}.{option}"
        for key, options in CHOICES.items()
        for option in options
        if f"seg.{key.split('.')[1]}.{option}" not in ZH
    ]
    assert missing == []


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_templates_show_no_chinese_outside_the_catalogue(path: Path) -> None:
    text = _JINJA.sub("", path.read_text(encoding="utf-8"))
    assert _CJK.findall(text) == []


def test_zh_is_the_default_and_the_address_wins_over_the_cookie() -> None:
    assert choose_language(None, None) == "zh"
    assert choose_language("en", "zh") == "en"
    assert choose_language(None, "en") == "en"
    assert choose_language("fr", "klingon") == "zh"


def test_translator_fills_fields_and_falls_back() -> None:
    en = Translator("en")
    assert en("import.rows_read", done=3, total=9) == "3 of about 9 rows read"
    assert Translator("zh")("import.rows_read", done=3, total=9) == "已读取 3 / 约 9 行"
    assert en("no.such.key") == "no.such.key"
    assert en.label("carrier", "china_mobile") == "China Mobile"
    assert en.label("carrier", "somewhere", "其他") == "其他"
    assert Translator("xx").html_lang == "zh-CN"


def test_a_problem_is_worded_in_the_readers_language() -> None:
    problem = Problem("form.bad_amount", text="abc")
    assert problem.message == ZH["form.bad_amount"].format(text="abc")
    assert problem.worded(Translator("en")).startswith("Amount “abc”")
