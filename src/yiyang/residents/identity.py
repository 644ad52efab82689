"""Resident identity numbers (公民身份号码) per GB 11643-1999.

18 characters: 6-digit area code, YYYYMMDD birth date, 3-digit sequence (odd male, even female)
and a check character by ISO 7064 MOD 11-2. Legacy 15-digit numbers (YYMMDD, no check) are
upgraded by inserting the century "19" and computing the check character.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

# GB 11643-1999 clause 8.2: weights W_i = 2^(i-1) mod 11, check = "10X98765432"[sum mod 11].
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"

# ASCII digits only: \d also takes full-width and other scripts' digits, which int() reads but a
# blind index does not match with the same number typed in ASCII.
_SHAPE_18 = re.compile(r"[0-9]{17}[0-9X]")
_SHAPE_15 = re.compile(r"[0-9]{15}")


class IdNumberError(ValueError):
    """An ID number that cannot be right; ``code`` is the machine code for reports and APIs."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class ResidentId:
    number: str  # always the 18-character form
    area_code: str
    birth_date: dt.date
    sex: str  # "M" or "F"
    upgraded_from_15: bool = False


def check_character(first17: str) -> str:
    total = sum(int(digit) * weight for digit, weight in zip(first17, WEIGHTS, strict=True))
    return CHECK_CHARS[total % 11]


def upgrade_15(number: str) -> str:
    """The 18-character form of a legacy 15-digit number (all were issued to people born 19xx)."""
    first17 = number[:6] + "19" + number[6:]
    return first17 + check_character(first17)


def parse_id_number(raw: str, today: dt.date | None = None) -> ResidentId:
    """Validate and normalise an ID number; raises ``IdNumberError`` saying what is wrong."""
    number = raw.strip().upper().replace(" ", "")
    if not number.isascii():  # typed with a Chinese input method: full-width digits and Ｘ
        number = unicodedata.normalize("NFKC", number).upper().replace(" ", "")
    upgraded = False
    if _SHAPE_15.fullmatch(number):
        number = upgrade_15(number)
        upgraded = True
    elif not _SHAPE_18.fullmatch(number):
        raise IdNumberError(
            "resident.id_number.format",
            f"身份证号应为18位（或旧式15位）数字 (ID number must be 18 characters, got {len(number)})",
        )
    try:
        birth = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise IdNumberError(
            "resident.id_number.birth_date",
            "身份证号中的出生日期不存在 (the birth date in the ID number does not exist)",
        ) from None
    today = today or dt.date.today()
    if birth > today or birth.year < 1890:
        raise IdNumberError(
            "resident.id_number.birth_date",
            "身份证号中的出生日期不可能 (the birth date in the ID number is impossible)",
        )
    expected = check_character(number[:17])
    if number[17] != expected:
        raise IdNumberError(
            "resident.id_number.checksum",
            f"身份证号校验位错误 (check character should be {expected})",
        )
    sex = "M" if int(number[16]) % 2 == 1 else "F"
    return ResidentId(
        number=number, area_code=number[:6], birth_date=birth, sex=sex, upgraded_from_15=upgraded
    )


def mask_id_number(number: str | None) -> str | None:
    """110105********002X: area code and the last four kept, the birth date hidden."""
    if not number:
        return number
    if len(number) <= 10:
        return "*" * len(number)
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return phone
    if len(phone) < 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def mask_attribute(attribute: str, value: str | None) -> str | None:
    """A profile value as it may be shown or kept in history: ID numbers and phones masked."""
    if attribute == "id_number":
        return mask_id_number(value)
    if attribute == "phone":
        return mask_phone(value)
    return value


def age_on(birth_date: dt.date, day: dt.date) -> int:
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))
