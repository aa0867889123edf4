"""Composition: the exact text a contact receives, from a rendered body.

Chinese carriers require every message to open with the sender's signature in
【】, and every marketing message to tell the recipient how to opt out. The
opt-out line follows the body directly, as in ``【星河商城】双11预售开启，拒收请回复R``.
"""

from __future__ import annotations

import functools
import re
from typing import Final, Literal, get_args

from echelon.errors import InvalidInput

MessageKind = Literal["marketing", "service", "verification"]
MESSAGE_KINDS: Final = frozenset(get_args(MessageKind))

OPT_OUT_TEXTS: Final = ("拒收请回复R", "回T退订", "回TD退订")
DEFAULT_OPT_OUT: Final = OPT_OUT_TEXTS[0]

SIGNATURE_MIN, SIGNATURE_MAX = 2, 16
_SIGNATURE_BRACKETS = frozenset("【】[]［］〔〕〖〗")

# Phrases that already tell the recipient how to opt out, in the casefolded body,
# in ASCII or full-width letters, with any separators between their characters
# ("回 T", "ＳＴＯＰ", "退-订"). Latin-letter phrases must not touch other Latin
# letters, separators aside: "nonstop", "non-stop" and "回Tom" are not opt-outs.
# This is deliberately narrower than word folding: a phrase it misses only means
# the standard opt-out line is appended as well, never that it is left out.
_SKIP = r"[\W_]*"
_OPT_OUT_PHRASE = re.compile(
    rf"退{_SKIP}订|拒{_SKIP}收|回{_SKIP}(?:[tｔ](?:{_SKIP}[dｄ])?|[nｎ])"
    rf"|[sｓ]{_SKIP}[tｔ]{_SKIP}[oｏ]{_SKIP}[pｐ]"
)
_LATIN_AHEAD = re.compile(rf"{_SKIP}[a-zａ-ｚ]")
_LATIN_BEHIND = re.compile(rf"[a-zａ-ｚ]{_SKIP}\Z")

# A body ending in one of these needs no separator before the opt-out line.
_CLOSING_PUNCTUATION = frozenset("，。！？；：、…,.!?;:)）」』”’》〉~～")


class InvalidSignature(InvalidInput):
    code = "invalid_signature"

    def __init__(self, signature: str, problem: str) -> None:
        super().__init__(f"短信签名 {signature!r} 无效：{problem}")
        self.signature = signature


class BodyHasSignature(InvalidInput):
    code = "body_has_signature"

    def __init__(self) -> None:
        super().__init__("正文不能包含【】：签名由系统自动添加在开头，请删除正文中的【】")


class EmptyBody(InvalidInput):
    code = "empty_body"

    def __init__(self) -> None:
        super().__init__("短信正文为空")


class InvalidOptOut(InvalidInput):
    code = "invalid_opt_out"

    def __init__(self, text: str) -> None:
        allowed = "、".join(OPT_OUT_TEXTS)
        super().__init__(f"退订语 {text!r} 不在允许范围内，可选：{allowed}")
        self.text = text


class InvalidMessageKind(InvalidInput):
    code = "invalid_message_kind"

    def __init__(self, kind: str) -> None:
        super().__init__(f"短信类型 {kind!r} 无效，可选：marketing、service、verification")
        self.kind = kind


@functools.lru_cache(maxsize=1024)
def validate_signature(signature: str) -> str:
    """The signature unchanged if carriers accept it: 2–16 characters, no brackets,
    no line breaks or control characters, no surrounding spaces."""
    if not SIGNATURE_MIN <= len(signature) <= SIGNATURE_MAX:
        raise InvalidSignature(signature, f"长度须为 {SIGNATURE_MIN}–{SIGNATURE_MAX} 个字")
    if _SIGNATURE_BRACKETS.intersection(signature):
        raise InvalidSignature(signature, "请不要带【】或其他括号，系统会自动添加【】")
    if signature != signature.strip() or not signature.isprintable():
        raise InvalidSignature(signature, "不能以空格开头或结尾，也不能含换行等控制字符")
    return signature


def has_opt_out(body: str) -> bool:
    """True when ``body`` already carries an opt-out instruction (退订, 拒收, 回T,
    回TD, 回N, STOP), spelled with any case, width or separators."""
    text = body.casefold()
    for match in _OPT_OUT_PHRASE.finditer(text):
        if match.group()[0] in "退拒":
            return True
        latin_before = match.group()[0] != "回" and _LATIN_BEHIND.search(text, 0, match.start())
        if not latin_before and not _LATIN_AHEAD.match(text, match.end()):
            return True
    return False


def compose(
    body: str,
    *,
    kind: MessageKind,
    signature: str,
    opt_out_text: str = DEFAULT_OPT_OUT,
) -> str:
    """``【signature】body``, plus ``opt_out_text`` for marketing unless the body
    already has an opt-out phrase. The body is stripped of surrounding whitespace
    (each character is billed) and may not contain 【 or 】 of its own.
    """
    if kind not in MESSAGE_KINDS:
        raise InvalidMessageKind(kind)
    if opt_out_text not in OPT_OUT_TEXTS:
        raise InvalidOptOut(opt_out_text)
    validate_signature(signature)
    body = body.strip()
    if not body:
        raise EmptyBody()
    if "【" in body or "】" in body:
        raise BodyHasSignature()
    if kind == "marketing" and not has_opt_out(body):
        body = f"{body}{_separator(body[-1])}{opt_out_text}"
    return f"【{signature}】{body}"


def _separator(last: str) -> str:
    """What goes between the body's last character and the opt-out line.

    Nothing after closing punctuation; a space after ASCII (a link, a coupon code)
    so the opt-out text is not read as part of it — Android link detection takes
    CJK characters and full-width commas into a URL's path; "，" otherwise.
    """
    if last in _CLOSING_PUNCTUATION:
        return ""
    if last.isascii():
        return " "
    return "，"
