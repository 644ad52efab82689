"""Probabilistic record linkage for agency rows that carry no usable ID number.

A Fellegi-Sunter model: a row is compared with each candidate resident field by field, each
field lands on one level (exact, homophone, transposed digits, moved house ...), each level
carries the weight log2(m / u), where m is how often the level occurs when row and resident
are the same person and u how often when they are not, and the summed weight decides the
outcome: link, review (a person decides) or a new resident. docs/linkage.md explains the
levels, where the m and u figures come from, the blocking, and why this is not Splink.

Rows with a valid ID number never get here: the import runner matches those exactly.

Everything here takes and returns plain values. It is on the import's hot path (about
100,000 rows against 400,000 residents), so keys are derived once per row and per resident,
pinyin is cached per character and a comparison is a handful of equality tests before any
fuzzy measure runs.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from rapidfuzz.distance import OSA, Hamming, Indel

from yiyang.residents.names import _half_width, clean_name, name_syllables  # noqa: F401 - clean_name is part of the API

Outcome = Literal["link", "review", "new"]


# ---------------------------------------------------------------------------------------------
# Levels and weights
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Level:
    """One outcome of comparing one field, with its Fellegi-Sunter probabilities."""

    name: str
    m: float  # P(level | row and resident are the same person)
    u: float  # P(level | they are different people)

    @property
    def weight(self) -> float:
        return math.log2(self.m / self.u)


# The figures are for a district registry of about 400,000 elders filled from three agency
# feeds; docs/linkage.md says where each one comes from. A "missing" level (either side has
# no value) has m == u: it says nothing either way.
NAME_LEVELS = (
    Level("exact", 0.86, 0.0002),
    Level("pinyin_exact", 0.09, 0.0003),  # homophones: 王丽 / 王莉
    Level("pinyin_fuzzy", 0.02, 0.0005),  # near homophones in dialect speech: 林 lin / 凌 ling
    Level("one_syllable", 0.015, 0.015),  # one character more, less or different: 王秀英 / 王秀兰
    Level("different", 0.015, 0.9840),
    Level("missing", 1.0, 1.0),
)
BIRTH_DATE_LEVELS = (
    Level("exact", 0.93, 0.000078),  # about 12,800 birth dates among people aged 65-100
    Level("transposed", 0.025, 0.0004),  # day and month swapped, or two adjacent digits
    Level("one_digit", 0.02, 0.0023),  # one digit mistyped
    Level("different", 0.025, 0.9972),
    Level("missing", 1.0, 1.0),
)
SEX_LEVELS = (
    Level("agree", 0.999, 0.5),
    Level("disagree", 0.001, 0.5),  # sex is read off the ID card or the person; rarely wrong
    Level("missing", 1.0, 1.0),
)
PHONE_LEVELS = (
    Level("exact", 0.75, 0.000004),  # u is mostly household members sharing one number
    Level("one_edit", 0.04, 0.000002),  # one digit mistyped or two adjacent digits swapped
    Level("different", 0.21, 0.999994),  # numbers change; agencies record a child's number
    Level("missing", 1.0, 1.0),
)
ADDRESS_LEVELS = (
    Level("exact", 0.55, 0.000005),  # after normalise_address
    Level("same_address", 0.15, 0.00002),  # same numbers, text written differently
    Level("same_area", 0.10, 0.004),  # same community or road, other building or room: moved
    Level("different", 0.20, 0.995975),
    Level("missing", 1.0, 1.0),
)
ID_NUMBER_LEVELS = (
    Level("exact", 0.999, 0.000000001),
    # Two valid GB 11643 numbers that differ: MOD 11-2 catches every single-digit slip, so
    # this is two people (or a relative's card, which is still another person's record).
    Level("different", 1e-30, 0.999),
    Level("missing", 1.0, 1.0),
)
# Phone and address identify a household, not a person. When the names do not agree even
# as near homophones, the pairs that still agree on phone or address are mostly spouses,
# twins and other members of one household, so agreement there is weighed against that
# population (u near one half) instead of against the whole registry. This is the one place
# the model departs from field independence; docs/linkage.md explains it.
PHONE_LEVELS_HOUSEHOLD = (
    Level("exact", 0.75, 0.5),
    Level("one_edit", 0.04, 0.03),
    PHONE_LEVELS[2],
    PHONE_LEVELS[3],
)
ADDRESS_LEVELS_HOUSEHOLD = (
    Level("exact", 0.55, 0.5),
    Level("same_address", 0.15, 0.15),
    Level("same_area", 0.10, 0.10),
    ADDRESS_LEVELS[3],
    ADDRESS_LEVELS[4],
)

# Level indexes, named for the code below.
N_EXACT, N_PINYIN, N_FUZZY, N_ONE, N_DIFFERENT, N_MISSING = range(6)
B_EXACT, B_TRANSPOSED, B_ONE_DIGIT, B_DIFFERENT, B_MISSING = range(5)
S_AGREE, S_DISAGREE, S_MISSING = range(3)
P_EXACT, P_ONE_EDIT, P_DIFFERENT, P_MISSING = range(4)
A_EXACT, A_SAME_ADDRESS, A_SAME_AREA, A_DIFFERENT, A_MISSING = range(5)
I_EXACT, I_DIFFERENT, I_MISSING = range(3)

_NAME_W = tuple(level.weight for level in NAME_LEVELS)
_BIRTH_W = tuple(level.weight for level in BIRTH_DATE_LEVELS)
_SEX_W = tuple(level.weight for level in SEX_LEVELS)
_PHONE_W = tuple(level.weight for level in PHONE_LEVELS)
_ADDRESS_W = tuple(level.weight for level in ADDRESS_LEVELS)
_PHONE_W_HOUSEHOLD = tuple(level.weight for level in PHONE_LEVELS_HOUSEHOLD)
_ADDRESS_W_HOUSEHOLD = tuple(level.weight for level in ADDRESS_LEVELS_HOUSEHOLD)
_ID_W = tuple(level.weight for level in ID_NUMBER_LEVELS)

# Thresholds calibrated on the synthetic truth set (tests/sources/test_linkage.py) and on a
# 400,000-resident run; Settings.link_threshold / review_threshold carry the deployed values.
LINK_THRESHOLD = 18.0
REVIEW_THRESHOLD = 15.0


# ---------------------------------------------------------------------------------------------
# Normalisation: names, pinyin, phones, addresses
# ---------------------------------------------------------------------------------------------

# Full-width forms (Ｗ, ３, the ideographic space) become half-width by NFKC; these are the
# traditional forms that turn up in addresses typed on older systems.
_TRADITIONAL = str.maketrans("號棟樓單區縣鎮鄉門層〇", "号栋楼单区县镇乡门层零")
_HAS_TRADITIONAL = re.compile("[號棟樓單區縣鎮鄉門層〇]")


_folded_of: dict[str, str] = {}


# Dialect folding: retroflex and flat initials (zh/z, ch/c, sh/s), n/l, and front and back
# nasal finals (an/ang, en/eng, in/ing) are confused in much of southern China, and by whoever
# writes down a name heard over the phone.
def fold_syllable(syllable: str) -> str:
    folded = _folded_of.get(syllable)
    if folded is None:
        folded = syllable
        if folded[:2] in ("zh", "ch", "sh"):
            folded = folded[0] + folded[2:]
        elif folded.startswith("n") and len(folded) > 1:
            folded = "l" + folded[1:]
        if folded.endswith(("ang", "eng", "ing")):
            folded = folded[:-1]
        _folded_of[syllable] = folded
    return folded


def unfold_syllable(folded: str) -> tuple[str, ...]:
    """Every syllable that ``fold_syllable`` folds to ``folded`` (and some that are no pinyin):
    what a query asks for to find, by the stored pinyin, residents sharing a folded syllable."""
    initials = [folded]
    if folded[:1] in ("z", "c", "s"):
        initials.append(folded[0] + "h" + folded[1:])
    elif folded.startswith("l") and len(folded) > 1:
        initials.append("n" + folded[1:])
    if folded.endswith(("an", "en", "in")):
        return tuple(variant + ending for variant in initials for ending in ("", "g"))
    return tuple(initials)


# A name's stored spellings asked for at most; past that (long names of many folded syllables)
# only its own, and its namesakes spelt otherwise are found by birth date or phone alone.
NAME_SPELLINGS_ASKED = 64


def unfold_name(keys: LinkKeys) -> tuple[str, ...]:
    """Every stored pinyin that folds to the name of ``keys`` (its own first): what the candidate
    query asks for to find those sharing a block on the folded name (``_blocks``)."""
    options = [unfold_syllable(syllable) for syllable in keys.syllables]
    if not options or math.prod(len(option) for option in options) > NAME_SPELLINGS_ASKED:
        return (keys.name_pinyin,) if keys.name_pinyin else ()
    spellings = {" ".join(parts) for parts in itertools.product(*options)}
    spellings.discard(keys.name_pinyin)
    return (keys.name_pinyin, *sorted(spellings))


BORN_EPOCH = dt.date(2000, 1, 1)  # born_surname_keys counts days from it, as BORN_SURNAME does


def born_surname_keys(rows: Iterable[LinkKeys]) -> tuple[set[str], set[dt.date]]:
    """The (birth date, surname) blocks of ``rows`` as the registry finds them: for each, every
    stored first syllable that folds to the row's, keyed ``"syllable|days since 2000-01-01"``
    (the expression PostgreSQL indexes, ``BORN_SURNAME`` in sources/service.py); and apart, the
    birth dates of rows with no name, whose block is whoever was born that day with none."""
    keys: set[str] = set()
    nameless: set[dt.date] = set()
    for row in rows:
        born = row.birth_date
        if born is None:
            continue
        first = row.syllables[0] if row.syllables else ""
        if not first:
            nameless.add(born)
            continue
        days = (born - BORN_EPOCH).days
        keys.update(f"{syllable}|{days}" for syllable in unfold_syllable(first))
    return keys, nameless


_PHONE_PREFIX = re.compile(r"^(?:0086|86)(?=1\d{10}$)")


def normalise_phone(phone: str | None) -> str | None:
    """Digits only, without a +86 prefix; blanks and placeholders (00000000000) are no phone."""
    if not phone:
        return None
    if phone.isascii() and phone.isdigit():
        digits = phone
    else:
        digits = "".join(char for char in _half_width(phone) if char.isdigit())
    if len(digits) > 11:
        digits = _PHONE_PREFIX.sub("", digits)
    if len(digits) < 7 or len(set(digits)) == 1 or digits.count("0") >= 8:
        return None
    return digits


_SEXES = {"m": "M", "f": "F", "男": "M", "女": "F", "1": "M", "2": "F", "male": "M", "female": "F"}


def normalise_sex(sex: str | None) -> str | None:
    """M or F from M/F, 男/女 or the GB/T 2261.1 codes 1/2; anything else is unknown (None)."""
    if not sex:
        return None
    return _SEXES.get(sex.strip().lower())


_CN_DIGITS = dict(zip("零〇一二两三四五六七八九", (0, 0, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9), strict=True))
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_NUMBER = re.compile(r"[零一二两三四五六七八九十百千]+(?=号|栋|幢|单元|室|楼|层|门|弄|巷|排|组)")
_HAS_CN_NUMERAL = re.compile("[零一二两三四五六七八九十百千]")
_DASHED = re.compile(r"(\d+)-(\d+)-(\d+)")
_NOT_KEPT = re.compile(r"[^0-9a-z\u3400-\u9fff]+")
# Administrative prefixes as they come, outermost first: 省/自治区, 市/州/盟, 区/县/旗, 街道/镇/乡.
# 小区, 社区, 园区 ... are places inside a community and stay.
_ADMIN_PREFIX = re.compile(
    r"^(?:[\u4e00-\u9fff]{2,7}?(?:省|自治区|特别行政区))?"
    r"(?:[\u4e00-\u9fff]{1,7}?(?:市(?![场口])|自治州|地区|盟))?"
    r"(?:[\u4e00-\u9fff]{1,7}?(?<![小社园校景厂矿营])(?:区|县|旗))?"
    r"(?:[\u4e00-\u9fff]{1,7}?(?:街道|镇|乡))?"
)


def chinese_numeral_value(numeral: str) -> int:
    """三 -> 3, 十二 -> 12, 二十三 -> 23, 一百零五 -> 105, and digit by digit 五〇二 -> 502."""
    if not any(char in _CN_UNITS for char in numeral):
        value = 0
        for char in numeral:
            value = value * 10 + _CN_DIGITS[char]
        return value
    total, digit = 0, 0
    for char in numeral:
        if char in _CN_UNITS:
            total += (digit or 1) * _CN_UNITS[char]
            digit = 0
        else:
            digit = _CN_DIGITS[char]
    return total + digit


def normalise_address(address: str) -> str:
    """The comparable form of an address.

    Half-width, simplified unit words, Chinese numerals before 号/栋/单元/室 as digits, no
    province, city, district or street-office prefix, 3-2-502 and 3号楼 written as 3栋2单元502,
    no 室, and no spaces or punctuation.
    """
    text = _half_width(address).lower()
    if _HAS_TRADITIONAL.search(text):
        text = text.translate(_TRADITIONAL)
    if _HAS_CN_NUMERAL.search(text):
        text = _CN_NUMBER.sub(_numeral_as_digits, text)
    if "-" in text:
        text = _DASHED.sub(_dashed_as_units, text)
    text = _NOT_KEPT.sub("", text).replace("号楼", "栋").replace("号栋", "栋").replace("幢", "栋")
    if text.endswith("室"):
        text = text[:-1]
    stripped = _ADMIN_PREFIX.sub("", text, count=1)
    return stripped or text


def _numeral_as_digits(match: re.Match[str]) -> str:
    return str(chinese_numeral_value(match.group()))


def _dashed_as_units(match: re.Match[str]) -> str:
    building, unit, room = match.groups()
    return f"{building}栋{unit}单元{room}"


_DIGIT_RUN = re.compile(r"\d+")


# ---------------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class LinkKeys:
    """What linkage compares, derived once per row or resident by make_keys."""

    name: str  # cleaned: half-width, no spaces
    sex: str | None  # "M" / "F"
    birth_date: dt.date | None
    phone: str | None  # digits only
    address: str | None  # as given
    id_number: str | None = None  # a valid GB 11643 number, when the row or resident has one
    name_pinyin: str = ""  # "wang xiu ying"
    name_folded: str = ""  # dialect-folded pinyin: "wan xiu yin"
    syllables: tuple[str, ...] = ()  # folded syllables
    birth_digits: str = ""  # "19500312"
    # normalise_address(address) and its parts, worked out the first time a comparison needs
    # them: most residents loaded for a batch are never compared on address.
    _address_key: str | None = field(default=None, repr=False, compare=False)
    _address_parts: tuple[str, tuple[str, ...]] | None = field(default=None, repr=False, compare=False)

    @property
    def address_key(self) -> str | None:
        key = self._address_key
        if key is None and self.address is not None:
            key = self._address_key = normalise_address(self.address)
        return key or None

    def address_parts(self) -> tuple[str, tuple[str, ...]]:
        """The address key's place name (the text before its first number) and its numbers."""
        parts = self._address_parts
        if parts is None:
            key = self.address_key or ""
            first_digit = _DIGIT_RUN.search(key)
            place = key[: first_digit.start()] if first_digit else key
            parts = self._address_parts = (place, tuple(_DIGIT_RUN.findall(key)))
        return parts


def make_keys(
    name: str,
    sex: str | None,
    birth_date: dt.date | None,
    phone: str | None,
    address: str | None,
    *,
    id_number: str | None = None,
    name_pinyin: str | None = None,
) -> LinkKeys:
    """Keys for one row or resident.

    Pass ``id_number`` when the row or resident has a valid one (two that differ never link),
    and ``name_pinyin`` when it is already stored, to skip working it out again.
    """
    cleaned = clean_name(name)
    if name_pinyin:
        syllables = tuple(name_pinyin.split())
    else:
        syllables = name_syllables(name)
        name_pinyin = " ".join(syllables)[:128]
    folded = tuple([_folded_of.get(syllable) or fold_syllable(syllable) for syllable in syllables])
    address = address.strip() if address else None
    return LinkKeys(
        name=cleaned,
        sex=normalise_sex(sex),
        birth_date=birth_date,
        phone=normalise_phone(phone),
        address=address or None,
        id_number=id_number or None,
        name_pinyin=name_pinyin,
        name_folded=" ".join(folded),
        syllables=folded,
        birth_digits=f"{birth_date.year:04d}{birth_date.month:02d}{birth_date.day:02d}" if birth_date else "",
    )


# ---------------------------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Comparison:
    """The summed weight of a row against one resident, and the level each field landed on."""

    weight: float
    levels: dict[str, str]
    weights: dict[str, float] = field(default_factory=dict)  # per field, for the review screen


def _name_level(row: LinkKeys, candidate: LinkKeys) -> int:
    if not row.name or not candidate.name:
        return N_MISSING
    if row.name == candidate.name:
        return N_EXACT
    if row.name_pinyin == candidate.name_pinyin:
        return N_PINYIN
    if row.name_folded == candidate.name_folded:
        return N_FUZZY
    a, b = row.syllables, candidate.syllables
    # One syllable inserted, dropped, changed or two swapped, in names of three or more
    # syllables: two-syllable names one apart share only a surname (王丽 / 王芳) or only a
    # given name, and that is "different".
    if max(len(a), len(b)) >= 3 and OSA.distance(a, b, score_cutoff=1) == 1:
        return N_ONE
    return N_DIFFERENT


def _birth_level(row: LinkKeys, candidate: LinkKeys) -> int:
    a, b = row.birth_date, candidate.birth_date
    if a is None or b is None:
        return B_MISSING
    if a == b:
        return B_EXACT
    if a.year == b.year and a.month == b.day and a.day == b.month:
        return B_TRANSPOSED
    digits_a, digits_b = row.birth_digits, candidate.birth_digits
    differing = Hamming.distance(digits_a, digits_b, score_cutoff=3)
    if differing == 1:
        return B_ONE_DIGIT
    if differing == 2 and OSA.distance(digits_a, digits_b, score_cutoff=1) == 1:
        return B_TRANSPOSED
    return B_DIFFERENT


def _phone_level(row: LinkKeys, candidate: LinkKeys) -> int:
    a, b = row.phone, candidate.phone
    if a is None or b is None:
        return P_MISSING
    if a == b:
        return P_EXACT
    if len(a) == len(b) and OSA.distance(a, b, score_cutoff=1) == 1:
        return P_ONE_EDIT
    return P_DIFFERENT


def _address_level(row: LinkKeys, candidate: LinkKeys) -> int:
    a, b = row.address_key, candidate.address_key
    if a is None or b is None:
        return A_MISSING
    if a == b:
        return A_EXACT
    place_a, numbers_a = row.address_parts()
    place_b, numbers_b = candidate.address_parts()
    # The place (estate, road) written differently: one side kept a prefix the normaliser
    # does not know, or a character is mistyped. Normalised Indel similarity on the place
    # only, since building-unit-room text is the same in every address.
    shorter, longer = (place_a, place_b) if len(place_a) <= len(place_b) else (place_b, place_a)
    similar = len(shorter) >= 3 and longer.endswith(shorter)
    if not similar:
        similar = Indel.normalized_similarity(place_a, place_b, score_cutoff=0.8) >= 0.8
    if not similar:
        return A_DIFFERENT
    if numbers_a == numbers_b:
        return A_SAME_ADDRESS
    # Same place, other numbers: moved within the community, or another building there.
    return A_SAME_AREA


Levels = tuple[int, int, int, int, int]  # name, birth date, sex, phone, id number


def _levels(row: LinkKeys, candidate: LinkKeys) -> Levels:
    """Every level but the address's, which is the dearest to work out and is left for last."""
    sex_a, sex_b = row.sex, candidate.sex
    sex = S_MISSING if sex_a is None or sex_b is None else S_AGREE if sex_a == sex_b else S_DISAGREE
    id_a, id_b = row.id_number, candidate.id_number
    id_level = I_MISSING if id_a is None or id_b is None else I_EXACT if id_a == id_b else I_DIFFERENT
    return (
        _name_level(row, candidate),
        _birth_level(row, candidate),
        sex,
        _phone_level(row, candidate),
        id_level,
    )


def _weight(levels: Levels) -> float:
    """The weight of every field but the address."""
    name, birth, sex, phone, id_level = levels
    # When names disagree, an agreeing phone only says "same household".
    phone_weight = _PHONE_W_HOUSEHOLD[phone] if name >= N_ONE else _PHONE_W[phone]
    return _NAME_W[name] + _BIRTH_W[birth] + _SEX_W[sex] + phone_weight + _ID_W[id_level]


def _address_weight(name: int, address: int) -> float:
    return _ADDRESS_W_HOUSEHOLD[address] if name >= N_ONE else _ADDRESS_W[address]


_BEST_ADDRESS_W = max(_ADDRESS_W)
_BEST_ADDRESS_W_HOUSEHOLD = max(_ADDRESS_W_HOUSEHOLD)


def _parts(levels: tuple[Level, ...], weights: tuple[float, ...]) -> tuple[tuple[str, float], ...]:
    return tuple((level.name, round(weight, 2)) for level, weight in zip(levels, weights, strict=True))


# (level name, rounded weight) per level, so reporting a comparison costs no arithmetic.
_NAME_PARTS = _parts(NAME_LEVELS, _NAME_W)
_BIRTH_PARTS = _parts(BIRTH_DATE_LEVELS, _BIRTH_W)
_SEX_PARTS = _parts(SEX_LEVELS, _SEX_W)
_PHONE_PARTS = _parts(PHONE_LEVELS, _PHONE_W)
_PHONE_PARTS_HOUSEHOLD = _parts(PHONE_LEVELS_HOUSEHOLD, _PHONE_W_HOUSEHOLD)
_ADDRESS_PARTS = _parts(ADDRESS_LEVELS, _ADDRESS_W)
_ADDRESS_PARTS_HOUSEHOLD = _parts(ADDRESS_LEVELS_HOUSEHOLD, _ADDRESS_W_HOUSEHOLD)
_ID_PARTS = _parts(ID_NUMBER_LEVELS, _ID_W)


def _comparison(levels: Levels, address: int) -> Comparison:
    name, birth, sex, phone, id_level = levels
    household = name >= N_ONE
    fields = {
        "name": _NAME_PARTS[name],
        "birth_date": _BIRTH_PARTS[birth],
        "sex": _SEX_PARTS[sex],
        "phone": (_PHONE_PARTS_HOUSEHOLD if household else _PHONE_PARTS)[phone],
        "address": (_ADDRESS_PARTS_HOUSEHOLD if household else _ADDRESS_PARTS)[address],
    }
    if id_level != I_MISSING:
        fields["id_number"] = _ID_PARTS[id_level]
    return Comparison(
        weight=_weight(levels) + _address_weight(name, address),
        levels={field_name: part[0] for field_name, part in fields.items()},
        weights={field_name: part[1] for field_name, part in fields.items()},
    )


def compare(row: LinkKeys, candidate: LinkKeys) -> Comparison:
    """Compare a row with one candidate resident: the total weight and each field's level."""
    return _comparison(_levels(row, candidate), _address_level(row, candidate))


def decide(weight: float, link_threshold: float, review_threshold: float) -> Outcome:
    """Link at or above the link threshold, review at or above the review threshold, else new."""
    if weight >= link_threshold:
        return "link"
    if weight >= review_threshold:
        return "review"
    return "new"


# ---------------------------------------------------------------------------------------------
# Blocking
# ---------------------------------------------------------------------------------------------


def block_keys(rows: Iterable[LinkKeys]) -> dict[str, set]:
    """What to load from the registry for a batch of rows.

    Every resident that can share a block with a row has the row's birth date, name pinyin
    or phone, so ``WHERE birth_date IN (...) OR name_pinyin IN (...) OR phone IN (...)``
    loads all the candidates LinkIndex can find for the batch. (The import runner narrows the
    pinyin part further: ``ImportRunner._name_clause``.)
    """
    birth_dates: set[dt.date] = set()
    pinyins: set[str] = set()
    phones: set[str] = set()
    for keys in rows:
        if keys.birth_date is not None:
            birth_dates.add(keys.birth_date)
        if keys.name_pinyin:
            pinyins.add(keys.name_pinyin)
        if keys.phone is not None:
            phones.add(keys.phone)
    return {"birth_date": birth_dates, "name_pinyin": pinyins, "phone": phones}


def _blocks(keys: LinkKeys) -> list[tuple]:
    """The blocks a row or resident belongs to; a row is compared with those sharing one.

    Pinyin here is dialect-folded, so homophones and near homophones share blocks.
    (birth date, surname): a changed given name.   (phone): anything else.
    (pinyin, birth year): a day/month transposition or a slip in a month or day digit.
    (pinyin, month and day): a slip in a year digit.   (pinyin): people with no birth date.
    """
    blocks: list[tuple] = []
    birth_date = keys.birth_date
    folded = keys.name_folded
    if birth_date is not None:
        blocks.append(("b", birth_date.toordinal(), keys.syllables[0] if keys.syllables else ""))
        if folded:
            blocks.append(("y", folded, birth_date.year))
            blocks.append(("d", folded, birth_date.month * 100 + birth_date.day))
    elif folded:
        blocks.append(("n", folded))
    if keys.phone is not None:
        blocks.append(("p", keys.phone))
    return blocks


_folded_names: dict[str, tuple[str, str]] = {}


def fold_name(name_pinyin: str | None) -> tuple[str, str]:
    """The dialect-folded pinyin of a name and its first syllable, as ``make_keys`` folds them."""
    if not name_pinyin:
        return "", ""
    folded = _folded_names.get(name_pinyin)
    if folded is None:
        syllables = [_folded_of.get(s) or fold_syllable(s) for s in name_pinyin.split()]
        folded = (" ".join(syllables), syllables[0] if syllables else "")
        if len(_folded_names) < 500_000:  # names repeat: a district has far fewer distinct ones
            _folded_names[name_pinyin] = folded
    return folded


def stored_blocks(
    birth_date: dt.date | None, name_pinyin: str | None, phone_tokens: Iterable[str] = ()
) -> tuple[list[tuple], str]:
    """The blocks of ``_blocks`` worked out from what the registry stores (pinyin, birth date, and
    for the phone a token such as its blind index), and the folded name."""
    folded, first = fold_name(name_pinyin)
    blocks: list[tuple] = []
    if birth_date is not None:
        blocks.append(("b", birth_date.toordinal(), first))
        if folded:
            blocks.append(("y", folded, birth_date.year))
            blocks.append(("d", folded, birth_date.month * 100 + birth_date.day))
    elif folded:
        blocks.append(("n", folded))
    blocks.extend(("p", token) for token in phone_tokens)
    return blocks, folded


class CandidateFilter:
    """Whether a stored resident can share a block with any of a batch's rows.

    The same test as ``LinkIndex.candidates``: a shared block, or the same folded name where the
    row or the resident has no birth date. A batch uses it to drop the residents its query loaded
    that share no block with any row before working out their keys: at district scale most share
    only the birth date or the pinyin with some row, and neither is a block on its own."""

    __slots__ = ("_blocks", "_dated_names", "_undated_names")

    def __init__(self) -> None:
        self._blocks: set[tuple] = set()
        self._dated_names: set[str] = set()  # rows with a birth date: residents without one
        self._undated_names: set[str] = set()  # rows without: residents born in any year

    def add_row(self, keys: LinkKeys, phone_tokens: Iterable[str] = ()) -> None:
        blocks, folded = stored_blocks(keys.birth_date, keys.name_pinyin, phone_tokens)
        self._blocks.update(blocks)
        if folded:
            (self._dated_names if keys.birth_date is not None else self._undated_names).add(folded)

    def wants(self, birth_date: dt.date | None, name_pinyin: str | None, phone_token: str | None) -> bool:
        # stored_blocks inlined: this runs for every resident a batch's query loads
        folded, first = fold_name(name_pinyin)
        blocks = self._blocks
        if birth_date is None:
            if folded and (folded in self._undated_names or folded in self._dated_names):
                return True
        else:
            if folded and (
                folded in self._undated_names
                or ("y", folded, birth_date.year) in blocks
                or ("d", folded, birth_date.month * 100 + birth_date.day) in blocks
            ):
                return True
            if ("b", birth_date.toordinal(), first) in blocks:
                return True
        return phone_token is not None and ("p", phone_token) in blocks


class LinkIndex:
    """An in-memory blocking index over residents, to find and score a row's candidates."""

    __slots__ = ("_blocks", "_keys", "_undated", "_years")

    def __init__(self) -> None:
        self._keys: dict[int, LinkKeys] = {}
        self._blocks: dict[tuple, list[int]] = {}
        self._years: dict[int, int] = {}  # birth year -> residents born then, for rows with no date
        self._undated = 0  # residents with no birth date

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, resident_id: object) -> bool:
        return resident_id in self._keys

    def keys_of(self, resident_id: int) -> LinkKeys | None:
        return self._keys.get(resident_id)

    def add(self, resident_id: int, keys: LinkKeys) -> None:
        """Add a resident, or replace the keys of one already here."""
        if resident_id in self._keys:
            self.remove(resident_id)
        self._keys[resident_id] = keys
        blocks = self._blocks
        for block in _blocks(keys):
            members = blocks.get(block)
            if members is None:
                blocks[block] = [resident_id]
            else:
                members.append(resident_id)
        if keys.birth_date is not None:
            year = keys.birth_date.year
            self._years[year] = self._years.get(year, 0) + 1
        else:
            self._undated += 1

    def remove(self, resident_id: int) -> None:
        keys = self._keys.pop(resident_id, None)
        if keys is None:
            return
        blocks = self._blocks
        for block in _blocks(keys):
            members = blocks.get(block)
            if members is not None and resident_id in members:
                members.remove(resident_id)
                if not members:
                    del blocks[block]
        if keys.birth_date is not None:
            year = keys.birth_date.year
            left = self._years[year] - 1
            if left:
                self._years[year] = left
            else:
                del self._years[year]
        else:
            self._undated -= 1

    def candidates(self, keys: LinkKeys) -> set[int]:
        """Residents sharing at least one block with the row."""
        found: set[int] = set()
        blocks = self._blocks
        for block in _blocks(keys):
            members = blocks.get(block)
            if members:
                found.update(members)
        folded = keys.name_folded
        if folded:
            if keys.birth_date is not None:
                # the same name among residents with no birth date on record
                members = blocks.get(("n", folded)) if self._undated else None
                if members:
                    found.update(members)
            else:
                for year in self._years:  # a row with no birth date: the same name, any year
                    members = blocks.get(("y", folded, year))
                    if members:
                        found.update(members)
        return found

    def best_match(self, keys: LinkKeys) -> tuple[int, Comparison] | None:
        """The highest-weight candidate (ties go to the lower id), or None without candidates."""
        best_id, best_weight, best_levels, best_address = -1, -math.inf, (0, 0, 0, 0, 0), A_MISSING
        row_has_address = keys.address_key is not None
        resident_keys = self._keys
        # Weigh every candidate on everything but the address; then work out addresses only
        # for those the best possible address could still lift above the best so far.
        open_address: list[tuple[float, int, float, Levels]] = []
        for resident_id in self.candidates(keys):
            candidate = resident_keys[resident_id]
            levels = _levels(keys, candidate)
            weight = _weight(levels)
            if row_has_address and candidate.address is not None:
                best_address_weight = _BEST_ADDRESS_W_HOUSEHOLD if levels[0] >= N_ONE else _BEST_ADDRESS_W
                open_address.append((weight + best_address_weight, resident_id, weight, levels))
            elif weight > best_weight or (weight == best_weight and resident_id < best_id):
                best_id, best_weight, best_levels, best_address = resident_id, weight, levels, A_MISSING
        open_address.sort(reverse=True)
        for bound, resident_id, weight, levels in open_address:
            if bound < best_weight:
                break
            address = _address_level(keys, resident_keys[resident_id])
            weight += _address_weight(levels[0], address)
            if weight > best_weight or (weight == best_weight and resident_id < best_id):
                best_id, best_weight, best_levels, best_address = resident_id, weight, levels, address
        if best_id < 0:
            return None
        return best_id, _comparison(best_levels, best_address)
