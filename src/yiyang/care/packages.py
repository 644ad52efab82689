"""Family-doctor service packages (签约服务包) as data, with the work each one promises.

An entitlement names a programme of ``schedule.cadences`` and who it applies to: everyone under
the package, residents of an age, or residents with a diagnosis (ICD-10 prefixes). The day job
reads these to generate routine work for every contract in force; nothing here touches a database.
"""

from __future__ import annotations

from dataclasses import dataclass

from yiyang.care.schedule import Programme


@dataclass(frozen=True, slots=True)
class Entitlement:
    programme: Programme
    min_age: int | None = None
    icd10_prefixes: tuple[str, ...] = ()  # empty: no diagnosis required


@dataclass(frozen=True, slots=True)
class ServicePackage:
    code: str
    zh: str
    en: str
    entitlements: tuple[Entitlement, ...]

    @property
    def label(self) -> str:
        return f"{self.zh} ({self.en})"


# ICD-10 groups as the basic public health service programmes use them.
HYPERTENSION = ("I10", "I11", "I12", "I13", "I15")
DIABETES = ("E11", "E14")
SEVERE_MENTAL = ("F20", "F22", "F25", "F31")

PACKAGES: dict[str, ServicePackage] = {
    package.code: package
    for package in (
        ServicePackage("basic", "基础包", "basic package",
                       (Entitlement(Programme.elderly_check, min_age=65),)),
        ServicePackage("elderly", "老年人服务包", "older people's package",
                       (Entitlement(Programme.elderly_check, min_age=65),
                        Entitlement(Programme.capability, min_age=65))),
        ServicePackage("chronic", "慢病管理包", "chronic disease package",
                       (Entitlement(Programme.hypertension, icd10_prefixes=HYPERTENSION),
                        Entitlement(Programme.diabetes, icd10_prefixes=DIABETES),
                        Entitlement(Programme.severe_mental, icd10_prefixes=SEVERE_MENTAL))),
        ServicePackage("rehab", "康复服务包", "rehabilitation package",
                       (Entitlement(Programme.rehab), Entitlement(Programme.capability))),
        ServicePackage("home_sickbed", "家庭病床服务包", "home sickbed package",
                       (Entitlement(Programme.home_sickbed), Entitlement(Programme.capability))),
    )
}  # fmt: skip


def entitlements_of(package_codes: list[str] | tuple[str, ...]) -> dict[Programme, Entitlement]:
    """The programmes a set of packages promises. Where two packages promise one programme the
    resident gets it under either's terms, so the wider one holds (``elderly`` and ``rehab`` both
    promise reassessment: 65+ under the first, everyone under the second), whatever their order."""
    found: dict[Programme, Entitlement] = {}
    for code in package_codes:
        package = PACKAGES.get(code)
        if package is None:
            continue
        for entitlement in package.entitlements:
            held = found.get(entitlement.programme)
            found[entitlement.programme] = entitlement if held is None else _wider(held, entitlement)
    return found


def _wider(one: Entitlement, other: Entitlement) -> Entitlement:
    """Who qualifies under either: no age bound beats one, the lower age the higher; no diagnosis
    required beats one, and two diagnosis lists join."""
    ages = (one.min_age, other.min_age)
    min_age = None if None in ages else min(one.min_age or 0, other.min_age or 0)
    prefixes = (
        ()
        if not (one.icd10_prefixes and other.icd10_prefixes)
        else tuple(dict.fromkeys(one.icd10_prefixes + other.icd10_prefixes))
    )
    return Entitlement(one.programme, min_age=min_age, icd10_prefixes=prefixes)


def unknown_packages(package_codes: list[str] | tuple[str, ...]) -> list[str]:
    return [code for code in package_codes if code not in PACKAGES]
