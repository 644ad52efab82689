"""Names as the registry stores and searches them: tidied, half-width, and toneless pinyin.

``registry_name`` is the one rule every import (CSV feeds, FHIR Patients) stores a name by;
``name_pinyin`` fills ``resident.name_pinyin``, which search and record linkage both use.
"""

from __future__ import annotations

import functools
import re
import unicodedata

MAX_NAME_LENGTH = 30  # characters, after tidying
# What ``registry_name`` rewrites: spaces, and the look-alikes of the 间隔号 (·) in minority names.
NAME_SPECIAL = re.compile(r"[\s.•‧・．･∙]")
_NAME_DOTS = str.maketrans({".": "·", "•": "·", "‧": "·", "・": "·", "．": "·", "･": "·", "∙": "·"})


class NameTooLong(ValueError):
    code = "resident.name.format"
    message = f"姓名超过{MAX_NAME_LENGTH}个字 (name longer than {MAX_NAME_LENGTH} characters)"

    def __init__(self) -> None:
        super().__init__(self.message)


def registry_name(name: str) -> str:
    """A name as the registry stores it; raises ``NameTooLong``. An empty name stays empty.

    Chinese names have no spaces (欧阳 秀兰 -> 欧阳秀兰) and minority names keep one dot form
    (阿依古丽・买买提 -> 阿依古丽·买买提); a Latin-letter name keeps single spaces between its parts."""
    name = name.strip()
    if NAME_SPECIAL.search(name):
        name = " ".join(name.split()) if name.isascii() else "".join(name.translate(_NAME_DOTS).split())
    if len(name) > MAX_NAME_LENGTH:
        raise NameTooLong()
    return name


def _half_width(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


# Polyphonic surnames read differently from the character's everyday reading (单 shan, not dan).
_SURNAME_READINGS = {
    "单": "shan", "曾": "zeng", "解": "xie", "区": "ou", "仇": "qiu", "朴": "piao", "查": "zha",
    "乐": "yue", "盖": "ge", "缪": "miao", "翟": "zhai", "覃": "qin", "繁": "po", "种": "chong",
    "秘": "bi", "员": "yun", "句": "gou", "隗": "wei", "万": "wan", "宁": "ning", "长": "chang",
    "尉": "yu", "沈": "shen", "柏": "bai", "薄": "bo", "折": "she", "洗": "xian", "冼": "xian",
}  # fmt: skip
_COMPOUND_SURNAMES = {"尉迟": "yu chi", "万俟": "mo qi", "单于": "chan yu", "长孙": "zhang sun"}

_syllable_of: dict[str, str] = {}  # character -> toneless pinyin; grows to a few thousand entries


def _is_han(char: str) -> bool:
    return "\u4e00" <= char <= "\u9fff" or "\u3400" <= char <= "\u4dbf"


def _syllable(char: str) -> str:
    syllable = _syllable_of.get(char)
    if syllable is None:
        from pypinyin import lazy_pinyin  # loading its dictionaries takes a third of a second

        syllable = lazy_pinyin(char)[0].lower()
        _syllable_of[char] = syllable
    return syllable


def clean_name(name: str) -> str:
    """A name as compared: half-width, no spaces or separators (the 间隔号 in minority names)."""
    name = _half_width(name)
    if not name.isalnum():
        name = "".join(char for char in name if char.isalnum())
    return name.lower()


def name_syllables(name: str) -> tuple[str, ...]:
    """Toneless pinyin syllables of a name; a run of Latin letters or digits is one token."""
    name = _half_width(name).strip().lower()
    syllables: list[str] = []
    start = 0
    compound = _COMPOUND_SURNAMES.get(name[:2])
    if compound:
        syllables.extend(compound.split())
        start = 2
    elif name[:1] in _SURNAME_READINGS:
        syllables.append(_SURNAME_READINGS[name[0]])
        start = 1
    latin = ""
    for char in name[start:]:
        if _is_han(char):
            if latin:
                syllables.append(latin)
                latin = ""
            syllables.append(_syllable(char))
        elif char.isalnum():
            latin += char
        elif latin:  # a space, 间隔号 or other separator ends a Latin token
            syllables.append(latin)
            latin = ""
    if latin:
        syllables.append(latin)
    return tuple(syllables)


@functools.lru_cache(maxsize=1 << 18)  # names repeat across feeds and batches
def name_pinyin(name: str) -> str:
    """Lowercase toneless pinyin, space separated (王丽 -> wang li); stored as resident.name_pinyin."""
    return " ".join(name_syllables(name))[:128]
