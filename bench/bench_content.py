"""Benchmark the per-message content path: render, compose, count parts, lint.

One marketing template, personalised for ``--size`` contacts with varied names
(some missing, so the ``default`` filter is exercised), coupons and tracked links.
Target: 1,000,000 messages in under 20 s on one core.

    .venv/bin/python bench/bench_content.py --size 1000000
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable, Iterator

from echelon.content.compose import compose
from echelon.content.length import count_parts
from echelon.content.render import compile_template
from echelon.content.words import default_checker, has_block

TEMPLATE = "{{ name | default('会员') }}您好，双11预售开启，会员专享{{ coupon }}券，详情{{ link }}"
SIGNATURE = "星河商城"
TARGET_SECONDS_PER_MILLION = 20.0

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董欧阳司马"
_GIVEN = [*"伟芳娜敏静丽强磊军洋勇艳杰娟", "秀英", "子涵", "浩然"]
_COUPONS = ["5元", "10元", "20元", "50元", "满199减30", "8.8折"]
_BASE62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# A prime, so names, coupons and links combine differently on each cycle.
_DISTINCT_CONTACTS = 10_007


def _short_code(number: int) -> str:
    code = ""
    for _ in range(6):
        number, digit = divmod(number, 62)
        code += _BASE62[digit]
    return code


def contacts() -> Iterator[tuple[str, dict[str, object]]]:
    """(phone, variables) for an endless stream of contacts; every 9th has no name."""
    names = [s + g for s, g in itertools.product(_SURNAMES, _GIVEN)]
    pool: list[tuple[str, dict[str, object]]] = []
    for i in range(_DISTINCT_CONTACTS):
        variables: dict[str, object] = {
            "coupon": _COUPONS[i % len(_COUPONS)],
            "link": f"https://e.cn/{_short_code(i * 7919)}",
        }
        if i % 9:
            variables["name"] = names[i % len(names)]
        pool.append((f"+86138{i:08d}", variables))
    return itertools.cycle(pool)


def run(source: str, size: int) -> tuple[float, int, int]:
    """Seconds for ``size`` messages, with total parts and blocked messages."""
    template = compile_template(source)
    checker = default_checker()
    stream = itertools.islice(contacts(), size)
    parts = blocked = 0
    started = time.perf_counter()
    for phone, variables in stream:
        body = template.render(variables, contact=phone)
        text = compose(body, kind="marketing", signature=SIGNATURE)
        parts += count_parts(text).parts
        blocked += has_block(checker.lint(text))
    return time.perf_counter() - started, parts, blocked


def stage_seconds(source: str, sample: int) -> dict[str, float]:
    """Each stage alone over the same ``sample`` messages, to see where time goes."""
    template = compile_template(source)
    checker = default_checker()
    inputs = list(itertools.islice(contacts(), sample))
    bodies = [template.render(variables, contact=phone) for phone, variables in inputs]
    texts = [compose(body, kind="marketing", signature=SIGNATURE) for body in bodies]
    stages: dict[str, Callable[[], object]] = {
        "render": lambda: [template.render(v, contact=p) for p, v in inputs],
        "compose": lambda: [compose(b, kind="marketing", signature=SIGNATURE) for b in bodies],
        "count_parts": lambda: [count_parts(t) for t in texts],
        "lint": lambda: [checker.lint(t) for t in texts],
    }
    timings = {}
    for name, stage in stages.items():
        started = time.perf_counter()
        stage()
        timings[name] = time.perf_counter() - started
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="messages to process")
    parser.add_argument("--template", default=TEMPLATE, help="message template (Jinja2)")
    parser.add_argument("--stages", action="store_true", help="also time each stage alone")
    args = parser.parse_args()

    default_checker()  # build the automaton outside the timed loop, as a worker would
    seconds, parts, blocked = run(args.template, args.size)
    rate = args.size / seconds
    per_million = seconds * 1_000_000 / args.size
    verdict = "met" if per_million < TARGET_SECONDS_PER_MILLION else "MISSED"
    print(f"messages      {args.size:,}")
    print(f"total         {seconds:.2f} s")
    print(f"rate          {rate:,.0f} messages/s ({1e6 / rate:.1f} µs each)")
    target = f"target < {TARGET_SECONDS_PER_MILLION:.0f} s: {verdict}"
    print(f"per million   {per_million:.1f} s ({target})")
    print(f"parts         {parts:,}   blocked {blocked:,}")
    if args.stages:
        sample = min(args.size, 100_000)
        for name, stage in stage_seconds(args.template, sample).items():
            print(f"  {name:<12}{stage * 1e6 / sample:6.2f} µs/message")


if __name__ == "__main__":
    main()
