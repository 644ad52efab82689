"""How agency data gets a person's details wrong, as functions a synthetic generator calls.

Each takes a ``random.Random`` so a seeded generator writes the same rows every time. The
corruptions are the ones record linkage has to survive (docs/linkage.md): a name written
with a homophone character, two digits swapped in a phone or a birth date, one digit
mistyped, a phone left blank, and an address that moved or was written another way.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from typing import overload

# Characters with the same toneless pinyin that people write for one another when a name is
# heard rather than read: given-name characters common among people born 1925-1960, then
# common surnames. Each group is one syllable; tests check that pinyin agrees.
HOMOPHONE_GROUPS: tuple[str, ...] = (
    "丽莉力立利俐",
    "明鸣铭",
    "华桦",
    "英瑛莹颖",
    "芳方",
    "军君俊",
    "建健剑坚",
    "秀绣",
    "玉钰宇",
    "兰岚蓝",
    "梅玫",
    "强蔷",
    "红洪宏鸿",
    "平萍",
    "珍贞",
    "霞侠",
    "云芸",
    "静晶菁婧",
    "慧惠辉",
    "凤峰锋丰",
    "国帼",
    "林琳霖",
    "欣新鑫馨",
    "燕艳妍",
    "清青卿",
    "志智芝",
    "伟卫薇维",
    "刚钢",
    "波博",
    "涛桃",
    "文雯",
    "成诚",
    "淑舒",
    "珠竹",
    "杰洁婕",
    "磊蕾",
    "娜纳",
    "王汪",
    "张章",
    "徐许",
    "吴伍武",
    "杨阳",
    "周州",
    "李黎",
    "刘柳",
    "胡湖",
    "何贺",
    "黄皇",
    "赵兆",
    "朱诸",
    "梁良",
    "韩寒",
)

HOMOPHONES: dict[str, str] = {
    char: group.replace(char, "") for group in HOMOPHONE_GROUPS for char in group
}  # character -> the others that sound the same


def typo_name(name: str, rng: random.Random) -> str:
    """One character swapped for a homophone (王丽 -> 王莉); unchanged if none has one."""
    positions = [index for index, char in enumerate(name) if char in HOMOPHONES]
    if not positions:
        return name
    index = rng.choice(positions)
    return name[:index] + rng.choice(HOMOPHONES[name[index]]) + name[index + 1 :]


@overload
def transpose_digits(value: str, rng: random.Random) -> str: ...
@overload
def transpose_digits(value: dt.date, rng: random.Random) -> dt.date: ...
def transpose_digits(value: str | dt.date, rng: random.Random) -> str | dt.date:
    """Two adjacent digits swapped: in a phone, or in a birth date's day and month.

    A date gets its day and month swapped (03-12 -> 12-03) or the digits of its day or month
    swapped (1950-03-12 -> 1950-03-21), whichever give a real date. Unchanged when no swap
    gives anything different.
    """
    if isinstance(value, dt.date):
        return _transpose_date(value, rng)
    # Keep the first three digits: a mistyped carrier or area prefix is caught by format checks
    # and rejected; the realistic slip is in the subscriber number, which still looks valid.
    pairs = [
        index
        for index in range(3, len(value) - 1)
        if value[index].isdigit() and value[index + 1].isdigit() and value[index] != value[index + 1]
    ]
    if not pairs:
        return value
    index = rng.choice(pairs)
    return value[:index] + value[index + 1] + value[index] + value[index + 2 :]


def _transpose_date(value: dt.date, rng: random.Random) -> dt.date:
    month, day = f"{value.month:02d}", f"{value.day:02d}"
    options = [(day, month), (month, day[::-1]), (month[::-1], day)]
    dates = []
    for new_month, new_day in options:
        try:
            candidate = value.replace(month=int(new_month), day=int(new_day))
        except ValueError:
            continue
        if candidate != value:
            dates.append(candidate)
    return rng.choice(dates) if dates else value


@overload
def slip_digit(value: str, rng: random.Random) -> str: ...
@overload
def slip_digit(value: dt.date, rng: random.Random) -> dt.date: ...
def slip_digit(value: str | dt.date, rng: random.Random) -> str | dt.date:
    """One digit mistyped, in a phone or in a birth date (1950-03-12 -> 1956-03-12)."""
    if isinstance(value, dt.date):
        digits = value.strftime("%Y%m%d")
        for _ in range(20):
            slipped = _slip(digits, rng, first=2)  # keep the century: 19xx stays 19xx
            try:
                return dt.date(int(slipped[:4]), int(slipped[4:6]), int(slipped[6:]))
            except ValueError:
                continue
        return value
    return _slip(value, rng)


def _slip(value: str, rng: random.Random, first: int = 0) -> str:
    positions = [index for index in range(first, len(value)) if value[index].isdigit()]
    if not positions:
        return value
    index = rng.choice(positions)
    digit = rng.choice([d for d in "0123456789" if d != value[index]])
    return value[:index] + digit + value[index + 1 :]


# How an agency writes "no phone": blank, a word, a dash, or a placeholder number.
_NO_PHONE = (None, "", "无", "-", "00000000000", "13800000000")


def drop_phone(phone: str | None, rng: random.Random) -> str | None:
    """The phone left out, the way agency exports leave it out (blank, 无, a placeholder)."""
    return rng.choice(_NO_PHONE)


_BUILDING = re.compile(r"(\d+)(号楼|栋|幢)")
_UNIT = re.compile(r"(\d+)(单元)")
_ROOM = re.compile(r"(\d+)(室)")
_ADMIN_PREFIX = re.compile(r"^[\u4e00-\u9fff]{1,7}?[市省]([\u4e00-\u9fff]{1,7}?[区县])?")
_CN_DIGITS = "〇一二三四五六七八九"
_FULL_WIDTH = str.maketrans("0123456789-", "０１２３４５６７８９－")


def change_address(address: str, rng: random.Random, *, moved: bool | None = None) -> str:
    """The address as another agency has it.

    ``moved`` (or, left None, by chance one time in two): the resident moved within the same
    community, to another building, unit or room. Otherwise the same address re-written:
    號 for 号, Chinese numerals, full-width digits, 3-2-502 for 3号楼2单元502室, spaces, or
    the city and district left off.
    """
    if moved is None:
        moved = rng.random() < 0.5
    if moved:
        return _moved(address, rng)
    return _rewritten(address, rng)


def _other_number(number: str, rng: random.Random, upper: int) -> str:
    current = int(number)
    choices = [value for value in range(1, upper + 1) if value != current]
    return str(rng.choice(choices))


def _moved(address: str, rng: random.Random) -> str:
    changed = address
    building = _BUILDING.search(changed)
    if building and rng.random() < 0.7:
        number = _other_number(building.group(1), rng, 30)
        changed = changed[: building.start(1)] + number + changed[building.end(1) :]
    room = _ROOM.search(changed)
    if room:
        floor = rng.randint(1, 6)
        number = f"{floor}0{rng.randint(1, 4)}"
        if number == room.group(1):
            number = f"{floor % 6 + 1}0{rng.randint(1, 4)}"
        changed = changed[: room.start(1)] + number + changed[room.end(1) :]
    if changed == address:  # nothing recognisable to move: a different last number
        runs = list(re.finditer(r"\d+", address))
        if runs:
            last = runs[-1]
            number = _other_number(last.group(), rng, 99)
            changed = address[: last.start()] + number + address[last.end() :]
    return changed


def _positional_numeral(value: int) -> str:
    """12 -> 十二, 20 -> 二十, 7 -> 七 (numbers up to 99, as buildings are written)."""
    if value < 10:
        return _CN_DIGITS[value]
    tens, ones = divmod(value, 10)
    return ("" if tens == 1 else _CN_DIGITS[tens]) + "十" + (_CN_DIGITS[ones] if ones else "")


def _rewritten(address: str, rng: random.Random) -> str:
    ways = ["traditional", "numerals", "full_width", "dashed", "spaces", "no_prefix"]
    changed = address
    for way in rng.sample(ways, rng.randint(1, 3)):
        if way == "traditional":
            changed = changed.replace("号", "號").replace("单元", "單元")
        elif way == "numerals":
            changed = _BUILDING.sub(
                lambda match: (
                    _positional_numeral(int(match.group(1))) + match.group(2)
                    if int(match.group(1)) < 100
                    else match.group()
                ),
                changed,
            )
            changed = _UNIT.sub(
                lambda match: "".join(_CN_DIGITS[int(d)] for d in match.group(1)) + "单元", changed
            )
            changed = _ROOM.sub(
                lambda match: "".join(_CN_DIGITS[int(d)] for d in match.group(1)) + "室", changed
            )
        elif way == "full_width":
            changed = changed.translate(_FULL_WIDTH)
        elif way == "dashed":
            match = re.search(r"(\d+)号楼(\d+)单元(\d+)室$", changed)
            if match:
                changed = changed[: match.start()] + f"{match.group(1)}-{match.group(2)}-{match.group(3)}"
        elif way == "spaces":
            changed = re.sub(r"(小区|社区|街道|区|院)", r"\1 ", changed, count=2)
        elif way == "no_prefix":
            changed = _ADMIN_PREFIX.sub("", changed, count=1) or changed
    return changed
