"""Generated sample data of a plausible Chinese shop, for the demo and the benchmarks.

Deterministic for a seed, written straight to CSV so that a million rows never sit in
memory. Mistakes are planted on purpose: a share of numbers is malformed, and a share
of customers did not tick the marketing box.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from echelon.audience.phone import InvalidNumber, normalise_phone

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍红鹏辉"
# Blocks that are in real use, spread over the carriers and provinces.
_PREFIXES = (
    *("134", "135", "136", "137", "138", "139", "147", "150", "151", "152", "157", "158"),
    *("159", "172", "178", "182", "183", "184", "187", "188", "198", "130", "131", "132"),
    *("145", "155", "156", "166", "175", "176", "185", "186", "133", "149", "153", "173"),
    *("177", "180", "181", "189", "191", "199", "192"),
)
_TAGS = ("VIP", "母婴", "美妆", "数码", "新客", "老客", "学生", "宝妈")
_BAD_NUMBERS = ("1380013800", "010-12345678", "12345678901", "138abc38000", "")


@dataclass(frozen=True, slots=True)
class SampleShape:
    contacts: int
    invalid_share: float = 0.02
    no_consent_share: float = 0.10
    seed: int = 7


def mobile(rng: random.Random) -> str:
    """A random number in a block that is really allocated (so only planted ones fail)."""
    while True:
        number = rng.choice(_PREFIXES) + f"{rng.randrange(100_000_000):08d}"
        try:
            normalise_phone(number)
        except InvalidNumber:
            continue
        return number


def write_contacts_csv(path: Path, shape: SampleShape) -> None:
    """Columns: 手机号, 姓名, 性别, 生日, 标签, 营销同意, 会员等级."""
    rng = random.Random(shape.seed)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["手机号", "姓名", "性别", "生日", "标签", "营销同意", "会员等级"])
        for _ in range(shape.contacts):
            phone = rng.choice(_BAD_NUMBERS) if rng.random() < shape.invalid_share else mobile(rng)
            name = rng.choice(_SURNAMES) + "".join(rng.choices(_GIVEN, k=rng.choice((1, 2))))
            birthday = date(1960, 1, 1) + timedelta(days=rng.randrange(365 * 45))
            tags = "|".join(rng.sample(_TAGS, k=rng.choice((0, 0, 1, 2))))
            writer.writerow(
                [
                    phone,
                    name,
                    rng.choice(("男", "女", "")),
                    birthday.isoformat() if rng.random() < 0.6 else "",
                    tags,
                    "否" if rng.random() < shape.no_consent_share else "是",
                    rng.choice(("普通", "银卡", "金卡", "钻石卡")),
                ]
            )


def write_phone_list(path: Path, phones: list[str], reason: str) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["手机号", "原因"])
        writer.writerows([p, reason] for p in phones)


def sample_phones(path: Path, count: int, seed: int) -> list[str]:
    """``count`` numbers from a contacts file written by ``write_contacts_csv``."""
    with path.open(encoding="utf-8", newline="") as handle:
        numbers = [row[0] for row in csv.reader(handle)][1:]
    good = [n for n in numbers if len(n) == 11 and n.isdigit() and n not in _BAD_NUMBERS]
    return random.Random(seed).sample(good, min(count, len(good)))
