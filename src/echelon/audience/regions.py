"""China's provincial divisions, so a region is spelled one way whatever its source.

``phonenumbers`` writes 江苏省常州市 / 广西南宁市 / 北京市; import files write 广东,
广东省 or 广西壮族自治区. Both are folded to the official full name of the province.
"""

from __future__ import annotations

# (official name, short name) — the short name is how people and phonenumbers write it.
PROVINCES: tuple[tuple[str, str], ...] = (
    ("北京市", "北京"),
    ("天津市", "天津"),
    ("上海市", "上海"),
    ("重庆市", "重庆"),
    ("河北省", "河北"),
    ("山西省", "山西"),
    ("辽宁省", "辽宁"),
    ("吉林省", "吉林"),
    ("黑龙江省", "黑龙江"),
    ("江苏省", "江苏"),
    ("浙江省", "浙江"),
    ("安徽省", "安徽"),
    ("福建省", "福建"),
    ("江西省", "江西"),
    ("山东省", "山东"),
    ("河南省", "河南"),
    ("湖北省", "湖北"),
    ("湖南省", "湖南"),
    ("广东省", "广东"),
    ("海南省", "海南"),
    ("四川省", "四川"),
    ("贵州省", "贵州"),
    ("云南省", "云南"),
    ("陕西省", "陕西"),
    ("甘肃省", "甘肃"),
    ("青海省", "青海"),
    ("台湾省", "台湾"),
    ("内蒙古自治区", "内蒙古"),
    ("广西壮族自治区", "广西"),
    ("西藏自治区", "西藏"),
    ("宁夏回族自治区", "宁夏"),
    ("新疆维吾尔自治区", "新疆"),
    ("香港特别行政区", "香港"),
    ("澳门特别行政区", "澳门"),
)

_MUNICIPALITIES = {"北京市", "天津市", "上海市", "重庆市"}
# Longest spelling first, so 黑龙江省 is not read as a province named 黑龙江 plus a city 省.
_SPELLINGS = sorted(
    ((spelling, official) for official, short in PROVINCES for spelling in (official, short)),
    key=lambda pair: -len(pair[0]),
)


def canonical_province(text: str) -> str | None:
    """The official name of the province ``text`` names, or None if it names none."""
    text = text.strip()
    for spelling, official in _SPELLINGS:
        if text == spelling:
            return official
    return None


def split_region(description: str) -> tuple[str | None, str | None]:
    """(province, city) from a description such as 江苏省常州市; unknown parts are None."""
    description = description.strip()
    for spelling, official in _SPELLINGS:
        if description.startswith(spelling):
            rest = description[len(spelling) :]
            if official in _MUNICIPALITIES:
                return official, official
            return official, rest or None
    return None, None
