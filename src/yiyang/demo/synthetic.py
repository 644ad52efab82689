"""A synthetic district and the files its agencies would send: seeded, so every run is the same.

``generate_district`` writes the district's area tree and organisations, then the three agency
feeds about the same elders: 卫健 health records (UTF-8 CSV), 医保 claims (GB18030 CSV) and the
民政 elderly roster (xlsx, or GB18030 CSV for big districts), with the noise real files carry,
plus ``truth.csv`` saying which person every feed row is about and whether it should be
rejected. The demo imports these through the real pipeline; the linkage benchmark scores
itself against the truth. Every rate below names its source; docs/synthetic.md lists them.

All people are synthetic. Names are drawn from common surnames and given-name characters;
ID numbers are well-formed GB 11643 numbers that belong to nobody in particular.
"""

from __future__ import annotations

import bisect
import contextlib
import csv
import dataclasses
import datetime as dt
import itertools
import operator
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from yiyang.geo.models import LivingArrangement, OrganisationKind
from yiyang.geo.service import ORGANISATION_KIND_LABELS
from yiyang.residents.identity import check_character
from yiyang.sources.noise import change_address, drop_phone, transpose_digits, typo_name
from yiyang.sources.records import CIVIL_COLUMNS, HEALTH_COLUMNS, INSURANCE_COLUMNS, Column

# Files are dated as of this day so a seed gives the same files whatever day it runs.
REFERENCE_DATE = dt.date(2025, 12, 31)
XLSX_LIMIT = 50_000  # above this many residents, civil affairs' roster is a GB18030 CSV (xlsx is slow)

TRUTH_COLUMNS = ("feed", "source_key", "person_id", "expected", "reason")


@dataclass(frozen=True, slots=True)
class NoiseConfig:
    """How untidy the agencies' files are. Rates are shares of rows (or of persons in a feed).

    Noise is applied to the insurance and civil-affairs files; the health file (the most
    complete, built from ID-checked health records) only loses phones, writes some communities
    by name, and has its share of invalid rows.
    """

    missing_id: float = 0.10  # rows without an ID number: linkage must use name/birth/sex/phone
    legacy_id_15: float = 0.02  # old 15-digit numbers (GB 11643-1989 form)
    name_typo: float = 0.03  # a homophone typed for one character
    phone_missing: float = 0.08  # left out as exports do: blank, 无, -, or a placeholder number
    phone_changed: float = 0.04  # a newer (or older) number than other agencies have
    phone_transposed: float = 0.02  # two neighbouring digits swapped
    birth_transposed: float = 0.10  # of rows without an ID: day and month (or their digits) swapped
    address_moved: float = 0.03  # civil affairs has another address (the person moved)
    address_rewritten: float = 0.05  # the same address written another way (號, 3-2-401, numerals)
    community_as_name: float = 0.05  # 所属社区 written as the name instead of the 12-digit code
    invalid_rows: float = 0.003  # deliberately invalid rows that an import must reject
    health_phone_missing: float = 0.04


@dataclass(frozen=True, slots=True)
class DistrictSpec:
    """The district the synthetic files describe. Codes follow 统计用区划代码."""

    code: str = "110108"
    name: str = "海淀区"
    phone_area_code: str = "010"
    # Where some elders' ID numbers were first issued (other districts of the same city).
    other_id_areas: tuple[str, ...] = ("110101", "110102", "110105", "110106", "110107", "110109")


DEFAULT_DISTRICT = DistrictSpec()


@dataclass(frozen=True, slots=True)
class DistrictFiles:
    directory: Path
    geography: Path
    organisations: Path
    health: Path
    insurance: Path
    civil: Path
    truth: Path
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def feeds(self) -> dict[str, Path]:
        return {"health": self.health, "insurance": self.insurance, "civil": self.civil}


# --- published figures ------------------------------------------------------------------------

# 第七次全国人口普查 (2020) population by five-year age group, millions, 60+ (95+ folded into
# 95-100): 60-64 73.38, 65-69 74.01, 70-74 49.59, 75-79 31.23, 80-84 20.37, 85-89 10.66,
# 90-94 3.70, 95+ 0.99 (sum 264.0 M = the 264.02 M 60+ of census bulletin No. 5).
AGE_GROUPS: tuple[tuple[int, int, float], ...] = (
    (60, 64, 73.38),
    (65, 69, 74.01),
    (70, 74, 49.59),
    (75, 79, 31.23),
    (80, 84, 20.37),
    (85, 89, 10.66),
    (90, 94, 3.70),
    (95, 100, 0.99),
)
# Men per 100 women by the same groups, approximately as in the 2020 census tables: near parity
# at 60-64, women increasingly outnumber men at older ages.
SEX_RATIO: tuple[float, ...] = (101.9, 98.3, 96.1, 91.4, 83.0, 72.3, 55.8, 42.0)

# Surnames with their share of the population (%) from the 2010 census surname ranking (top 20);
# the rest are the following names of the 公安部 百家姓 ranking with declining shares.
SURNAMES: tuple[tuple[str, float], ...] = (
    ("王", 7.1), ("李", 6.96), ("张", 6.42), ("刘", 5.16), ("陈", 4.26), ("杨", 2.97), ("黄", 2.16), ("赵", 2.03),
    ("周", 1.88), ("吴", 1.78), ("徐", 1.43), ("孙", 1.39), ("马", 1.34), ("胡", 1.16), ("朱", 1.14), ("郭", 1.09),
    ("何", 1.05), ("罗", 1.0), ("高", 0.97), ("林", 0.96), ("郑", 0.9), ("梁", 0.88), ("谢", 0.84), ("宋", 0.82),
    ("唐", 0.8), ("许", 0.78), ("韩", 0.76), ("冯", 0.72), ("邓", 0.72), ("曹", 0.7), ("彭", 0.68), ("曾", 0.66),
    ("肖", 0.64), ("田", 0.62), ("董", 0.6), ("袁", 0.58), ("潘", 0.56), ("于", 0.56), ("蒋", 0.54), ("蔡", 0.54),
    ("余", 0.52), ("杜", 0.5), ("叶", 0.5), ("程", 0.48), ("苏", 0.46), ("魏", 0.46), ("吕", 0.44), ("丁", 0.44),
    ("任", 0.42), ("沈", 0.42), ("姚", 0.4), ("卢", 0.4), ("姜", 0.38), ("崔", 0.38), ("钟", 0.36), ("谭", 0.36),
    ("陆", 0.34), ("汪", 0.34), ("范", 0.32), ("金", 0.32), ("石", 0.3), ("廖", 0.3), ("贾", 0.28), ("夏", 0.28),
    ("韦", 0.26), ("付", 0.26), ("方", 0.26), ("白", 0.24), ("邹", 0.24), ("孟", 0.24), ("熊", 0.22), ("秦", 0.22),
    ("邱", 0.22), ("江", 0.2), ("尹", 0.2), ("薛", 0.2), ("闫", 0.18), ("段", 0.18), ("雷", 0.18), ("侯", 0.16),
    ("龙", 0.16), ("史", 0.16), ("欧阳", 0.02), ("司马", 0.005), ("诸葛", 0.003), ("上官", 0.003),
)  # fmt: skip

# Given names of people born 1925-1965: a set of very common whole names, and characters that
# combine into the rest. Women's names of that era lean on 秀/桂/玉/淑/凤 and 英/兰/珍/芳.
MALE_NAMES = (
    "建国", "建华", "国庆", "志强", "德福", "振华", "国华", "卫东", "永红", "跃进", "援朝", "保国", "玉林", "宝山", "金生", "长海", "福生",
    "树林", "文明", "建军", "国强", "志明", "德明", "光明",
)  # fmt: skip
MALE_FIRST = "建国志德永长振文玉宝金福春庆树明光新立学继海家俊"
MALE_SECOND = "国华民军林山明平生忠成才海荣祥福贵强伟良胜利安发义"
MALE_SINGLE = "伟勇军强刚斌杰涛明亮超波辉平华明"
FEMALE_NAMES = (
    "秀英", "桂英", "秀兰", "玉兰", "桂兰", "淑珍", "凤英", "玉珍", "玉英", "兰英", "淑兰", "秀珍", "桂珍", "凤兰", "素珍", "秀荣", "淑英",
    "桂芳", "玉梅", "秀芳", "丽华", "红梅", "淑华", "秀云",
)  # fmt: skip
FEMALE_FIRST = "秀桂玉淑凤素兰丽美春金月翠雅惠瑞彩云玉宝"
FEMALE_SECOND = "英兰珍芳荣华梅琴云霞萍娟莲香芬清敏娥贞仙"
FEMALE_SINGLE = "敏静英华芳霞萍红丽娟燕玲洁兰"

# Living arrangements of people 60+: China Research Center on Aging, 2021 survey of the aged
# population: 59.7% lived in empty-nest households (alone or with a spouse only). Living alone
# about 12% in cities (within the 10-15% the census-based literature reports); the rest of the
# empty-nest share are couples.
ALONE_SHARE = 0.12
COUPLE_EMPTY_NEST = 0.68  # couples (both 60+) living by themselves; the rest live with children
# Chance that a person 60+ has a spouse who is also in the elderly registry, by sex and decade
# (widowhood rises with age, far faster for women).
SPOUSE_PRESENT = {"M": (0.88, 0.80, 0.62, 0.35), "F": (0.80, 0.62, 0.35, 0.12)}

# Chronic disease by age band 60-69 / 70-79 / 80+.
# Hypertension: 52% among Chinese older adults (Xia 2020, CLHLS and CHARLS); higher with age.
HYPERTENSION = (0.52, 0.60, 0.63)
# Type 2 diabetes: 22.2% of people 60+ (CHARLS 2015, measured), 22.5% of urban 65+ (Shenzhen 2018).
DIABETES = (0.21, 0.24, 0.21)
# Dementia: 6.0% of people 60+ (Jia et al., Lancet Public Health 2020), rising steeply with age;
# the bands (60-69, 70-79, 80-89, 90+) reproduce 6% on the census age structure.
DEMENTIA = (0.028, 0.07, 0.15, 0.30)
# Other common conditions in community records (estimates; no single national figure used).
CORONARY = (0.08, 0.13, 0.17)
STROKE = (0.04, 0.07, 0.09)
COPD = (0.05, 0.08, 0.10)
KNEE_OA = (0.10, 0.14, 0.16)

# Limitations in activities of daily living, by age band (meta-analysis, Chen et al. 2023,
# IJFM: 10.8% at 60-69, 21.2% at 70-79, 47.0% at 80+; women a little higher). The 4th sample
# survey of the elderly (2015) counted 18.3% disabled or semi-disabled; these bands give ~19%.
DISABLED = (0.108, 0.212, 0.47)
# How the disabled split over the GB/T 42195-2022 levels 轻度/中度/重度/完全 (estimate).
DISABLED_LEVELS = (0.55, 0.23, 0.13, 0.09)
CAPABILITY_LABELS = ("能力完好", "轻度失能", "中度失能", "重度失能", "完全失能")

# Insurance of urban elders: 362 M in employee insurance and 983 M in resident insurance
# nationally (NHSA statistical bulletin 2022), but city retirees are mostly in the employee
# scheme; this mix is an estimate for an urban district.
INSURANCE_MIX = (("城镇职工基本医疗保险", 0.62), ("城乡居民基本医疗保险", 0.35), ("自费", 0.03))

# 低保 minimum living allowance and 特困 destitute support among elders: about 2.2% and 1.0% of
# people 60+ in a provincial yearbook (Fujian 2022, urban and rural); an urban district has
# fewer 特困 (who are by definition alone, without support).
DIBAO = 0.017
TEKUN_AMONG_ALONE = 0.03
# Disability certificate (残疾证) holders among elders, by capability level (estimate).
DISABILITY_CERT = (0.03, 0.08, 0.20, 0.35, 0.40)

LIVING_LABELS = {
    LivingArrangement.alone: "独居",
    LivingArrangement.spouse_only: "空巢",
    LivingArrangement.with_family: "与子女同住",
}

CHRONIC = {
    "hypertension": ("I10", "高血压"),
    "diabetes": ("E11.9", "2型糖尿病"),
    "dementia": ("F03", "痴呆"),
    "alzheimer": ("G30.9", "阿尔茨海默病"),
    "coronary": ("I25.1", "冠心病"),
    "stroke": ("I63.9", "脑梗死"),
    "copd": ("J44.9", "慢性阻塞性肺疾病"),
    "knee_oa": ("M17.9", "膝骨关节炎"),
}
ACUTE = (
    ("J06.9", "急性上呼吸道感染"),
    ("J20.9", "急性支气管炎"),
    ("K29.7", "胃炎"),
    ("M54.5", "腰痛"),
    ("H25.9", "老年性白内障"),
    ("R51", "头痛"),
)
LONG_PRESCRIPTION_CODES = ("I10", "E11.9", "I25.1", "J44.9")

STREET_NAMES = (
    "东升", "西湖", "南苑", "北关", "中山", "人民路", "解放路", "建设路", "和平里", "新华", "长安", "朝阳路", "光华", "文化路", "学府", "科技园",
    "滨河", "江南", "城北", "城南", "城东", "城西", "新城", "龙泉", "金山", "银湖", "花园路", "体育路", "站前", "翠湖", "凤凰", "东风",
)  # fmt: skip
COMMUNITY_WORDS = (
    "和平", "幸福", "光明", "新华", "友谊", "建设", "团结", "胜利", "长青", "安华", "春晖", "翠微", "枫林", "海棠", "金源", "锦绣", "兰园",
    "龙潭", "明光", "青塔", "清河", "瑞祥", "双榆", "太平", "万柳", "文慧", "五福", "星光", "杏林", "阳光", "怡园", "永泰", "育新", "志新",
    "紫竹", "丰收", "红旗", "绿园", "美景", "宁静", "祥云", "松林", "桃园", "梧桐", "向阳", "欣荣", "燕华", "玉泉",
)  # fmt: skip
COMMUNITY_SUFFIXES = ("里", "园", "苑", "东里", "西里", "北里", "南里", "小区", "家园", "花园")
ROADS = (
    "建设路", "人民路", "解放路", "中山路", "和平路", "文化路", "学院路", "新华路", "友谊路", "长江路", "黄河路", "青年路", "朝阳路", "东风路", "光明路",
    "幸福路", "民主路", "胜利路", "团结路", "公园路", "滨河路", "工农路", "前进路", "红旗路", "花园路", "体育路", "迎宾路", "复兴路", "育才路", "北大街",
    "南大街", "西大街", "东大街", "槐树街", "柳荫街", "杨柳胡同", "石板胡同", "新街", "文昌路", "清河路",
)  # fmt: skip
ELDERLY_CARE_NAMES = ("颐养中心", "养老院", "敬老院", "康养中心", "老年公寓", "护理院")
SOCIAL_ORG_NAMES = ("银龄互助协会", "社区志愿者协会", "时间银行服务中心", "老年协会")
HOSPITAL_NAMES = ("人民医院", "中医医院", "第二人民医院", "中西医结合医院", "老年病医院", "康复医院", "医院")

# Mobile prefixes of the three carriers.
MOBILE_PREFIXES = (
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "150", "151", "152", "153", "155",
    "156", "157", "158", "159", "166", "176", "177", "178", "180", "181", "182", "183", "185", "186", "187",
    "188", "189", "198", "199",
)  # fmt: skip

# --- the people -------------------------------------------------------------------------------


@dataclass(slots=True)
class Person:
    person_id: str
    name: str
    sex: str  # "M" / "F"
    birth: dt.date
    age: int
    id_number: str
    phone: str
    household: int = -1
    living: LivingArrangement = LivingArrangement.with_family
    insurance: str = ""
    conditions: list[tuple[str, str]] = field(default_factory=list)
    capability: int = 0  # index into CAPABILITY_LABELS
    disability_grade: int = 0  # 0 none, 1-4 残疾证 grade
    dibao: bool = False
    tekun: bool = False
    hypertensive: bool = False
    diabetic: bool = False
    conditions_text: str = ""  # as 慢病诊断 writes them: "I10 高血压;E11.9 2型糖尿病"


@dataclass(slots=True)
class Community:
    code: str
    name: str
    street_code: str
    grid_codes: list[str]
    compounds: list[tuple[str, int]]  # (road, number): the residential compounds
    used_addresses: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Household:
    community: Community
    grid_code: str
    address: str


@dataclass(slots=True)
class District:
    spec: DistrictSpec
    streets: list[tuple[str, str]]  # (code, name)
    communities: list[Community]
    organisations: list[tuple[str, str, OrganisationKind, str, str, str]]
    facilities_by_street: dict[str, list[str]]
    hospitals: list[str]


def _band(age: int) -> int:
    return 0 if age < 70 else 1 if age < 80 else 2


def generate_district(
    out_dir: Path | str,
    residents: int,
    seed: int = 7,
    noise: NoiseConfig | None = None,
    *,
    civil_format: Literal["auto", "xlsx", "csv"] = "auto",
    district: DistrictSpec = DEFAULT_DISTRICT,
    reference_date: dt.date = REFERENCE_DATE,
    progress: bool = False,
) -> DistrictFiles:
    """Write a district of ``residents`` elders (60-100) and its agencies' files into ``out_dir``.

    The same arguments always give byte-identical files. ``civil_format`` "auto" writes the civil
    roster as xlsx up to 50,000 residents and as a GB18030 CSV above that.
    """
    if residents < 1:
        raise ValueError("residents must be at least 1")
    noise = noise or NoiseConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    use_xlsx = civil_format == "xlsx" or (civil_format == "auto" and residents <= XLSX_LIMIT)

    with _progress(progress) as advance:
        geo_rng = random.Random(f"{seed}:geography")
        town = _build_district(geo_rng, district, residents)
        people = _build_people(random.Random(f"{seed}:people"), district, residents, reference_date, advance)
        households = _build_households(random.Random(f"{seed}:households"), town, people)
        _assign_health(random.Random(f"{seed}:health-facts"), people)

        files = DistrictFiles(
            directory=out,
            geography=out / "geography.csv",
            organisations=out / "organisations.csv",
            health=out / "health.csv",
            insurance=out / "insurance.csv",
            civil=out / ("civil.xlsx" if use_xlsx else "civil.csv"),
            truth=out / "truth.csv",
        )
        _write_geography(files.geography, town)
        _write_organisations(files.organisations, town)
        truth: Truth = []
        writer = _FeedWriter(town, people, households, noise, reference_date)
        health_rows = writer.health(random.Random(f"{seed}:health"), truth, advance)
        insurance_rows = writer.insurance(random.Random(f"{seed}:insurance"), truth, advance)
        civil_rows = writer.civil(random.Random(f"{seed}:civil"), truth, advance)
        _write_csv(files.health, HEALTH_COLUMNS, HEALTH_FIELDS, health_rows, "utf-8")
        _write_csv(files.insurance, INSURANCE_COLUMNS, INSURANCE_FIELDS, insurance_rows, "gb18030")
        if use_xlsx:
            _write_xlsx(files.civil, CIVIL_COLUMNS, CIVIL_FIELDS, civil_rows, reference_date)
        else:
            _write_csv(files.civil, CIVIL_COLUMNS, CIVIL_FIELDS, civil_rows, "gb18030")
        with files.truth.open("w", encoding="utf-8", newline="") as handle:
            out_csv = csv.writer(handle)
            out_csv.writerow(TRUTH_COLUMNS)
            out_csv.writerows(truth)

    counts = {
        "residents": len(people),
        "households": len(households),
        "streets": len(town.streets),
        "communities": len(town.communities),
        "grids": sum(len(c.grid_codes) for c in town.communities),
        "organisations": len(town.organisations),
        "health_rows": len(health_rows),
        "insurance_rows": len(insurance_rows),
        "civil_rows": len(civil_rows),
        "rejected_rows": sum(1 for row in truth if row[3] == "reject"),
    }
    return dataclasses.replace(files, counts=counts)


@contextlib.contextmanager
def _progress(enabled: bool) -> Iterator[_Advance]:
    if not enabled:
        yield _Advance(None)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    ) as bar:
        yield _Advance(bar)


class _Advance:
    """Progress reporting that costs nothing when there is no bar."""

    def __init__(self, bar: object | None) -> None:
        self.bar = bar

    def task(self, description: str, total: int) -> object | None:
        if self.bar is None:
            return None
        return self.bar.add_task(description, total=total)  # type: ignore[attr-defined]

    def step(self, task: object | None, amount: int) -> None:
        if task is not None:
            self.bar.update(task, advance=amount)  # type: ignore[attr-defined]


# --- geography and organisations --------------------------------------------------------------


def _street_count(residents: int) -> int:
    # Urban districts have roughly 8-30 streets; tiny demo districts get one street per 1,000.
    if residents >= 8_000:
        return max(8, min(30, round(residents / 15_000)))
    return max(1, -(-residents // 1_000))


def _build_district(rng: random.Random, spec: DistrictSpec, residents: int) -> District:
    street_names = list(STREET_NAMES)
    rng.shuffle(street_names)
    community_names = [w + s for w in COMMUNITY_WORDS for s in COMMUNITY_SUFFIXES]
    rng.shuffle(community_names)
    names = iter(community_names)
    streets: list[tuple[str, str]] = []
    communities: list[Community] = []
    for s in range(_street_count(residents)):
        street_code = f"{spec.code}{s + 1:03d}"
        streets.append((street_code, f"{street_names[s]}街道"))
        for c in range(rng.randint(8, 12)):
            community_code = f"{street_code}{c + 1:03d}"
            name = f"{next(names)}社区"
            grids = [f"{community_code}-{g + 1:02d}" for g in range(rng.randint(3, 6))]
            compounds = [(rng.choice(ROADS), rng.randint(1, 199)) for _ in range(rng.randint(2, 4))]
            communities.append(Community(community_code, name, street_code, grids, compounds))

    organisations: list[tuple[str, str, OrganisationKind, str, str, str]] = []
    codes: set[str] = set()
    by_street: dict[str, list[str]] = {}

    def add(kind: OrganisationKind, name: str, area_code: str, address: str, registrant: str) -> None:
        code = _credit_code(rng, registrant, spec.code, codes)
        phone = f"{spec.phone_area_code}-{rng.randint(6, 8)}{rng.randint(0, 9_999_999):07d}"
        organisations.append((code, name, kind, area_code, address, phone))

    def address_in(community: Community) -> str:
        road, number = rng.choice(community.compounds)
        return f"{road}{number}号"

    add(OrganisationKind.civil_affairs, f"{spec.name}民政局", spec.code, f"{rng.choice(ROADS)}1号", "11")
    add(
        OrganisationKind.health_commission,
        f"{spec.name}卫生健康委员会",
        spec.code,
        f"{rng.choice(ROADS)}3号",
        "11",
    )
    add(
        OrganisationKind.medical_insurance,
        f"{spec.name}医疗保障局",
        spec.code,
        f"{rng.choice(ROADS)}5号",
        "11",
    )
    hospitals: list[str] = []
    for h in range(max(1, min(len(HOSPITAL_NAMES), len(streets) // 4 + 1))):
        name = f"{spec.name}{HOSPITAL_NAMES[h]}"
        hospitals.append(name)
        add(OrganisationKind.hospital, name, spec.code, f"{rng.choice(ROADS)}{rng.randint(1, 300)}号", "12")
    for street_code, street_name in streets:
        members = [c for c in communities if c.street_code == street_code]
        base = street_name.removesuffix("街道")
        centre = f"{base}社区卫生服务中心"
        by_street[street_code] = [centre]
        add(OrganisationKind.health_centre, centre, street_code, address_in(members[0]), "12")
        add(OrganisationKind.street_office, f"{street_name}办事处", street_code, address_in(members[0]), "11")
        for i, community in enumerate(members):
            # About one health station and one elderly-care station per two communities
            # (Haidian: 175 stations and 160 elderly-care stations for ~29 streets).
            if i % 2 == 0:
                station = f"{community.name.removesuffix('社区')}社区卫生服务站"
                by_street[street_code].append(station)
                add(OrganisationKind.health_station, station, community.code, address_in(community), "12")
            if i % 2 == 1 or len(members) == 1:
                add(
                    OrganisationKind.elderly_care_station,
                    f"{community.name.removesuffix('社区')}养老驿站",
                    community.code,
                    address_in(community),
                    "52",
                )
        for k in range(rng.randint(1, 3)):
            add(
                OrganisationKind.elderly_care_institution,
                f"{base}{ELDERLY_CARE_NAMES[(k + len(base)) % len(ELDERLY_CARE_NAMES)]}",
                street_code,
                address_in(rng.choice(members)),
                "52",
            )
        add(
            OrganisationKind.social_organisation,
            f"{base}{SOCIAL_ORG_NAMES[len(base) % len(SOCIAL_ORG_NAMES)]}",
            street_code,
            address_in(members[-1]),
            "51",
        )
    return District(spec, streets, communities, organisations, by_street, hospitals)


# GB 32100-2015 统一社会信用代码: 18 characters, the 9-character GB 11714 organisation code
# (with its own check digit) inside, and a check character over the first 17 (mod 31).
_CREDIT_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def organisation_code_check(body8: str) -> str:
    """GB 11714-1997 check character of an 8-digit organisation code body."""
    total = sum(int(ch) * w for ch, w in zip(body8, _ORG_CODE_WEIGHTS, strict=True))
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def credit_code_check(first17: str) -> str:
    """GB 32100-2015 check character of a unified social credit code."""
    total = sum(_CREDIT_CHARS.index(ch) * w for ch, w in zip(first17, _CREDIT_WEIGHTS, strict=True))
    return _CREDIT_CHARS[(31 - total % 31) % 31]


def _credit_code(rng: random.Random, registrant: str, area: str, used: set[str]) -> str:
    while True:
        body = f"{rng.randint(10_000_000, 99_999_999)}"
        first17 = f"{registrant}{area}{body}{organisation_code_check(body)}"
        code = first17 + credit_code_check(first17)
        if code not in used:
            used.add(code)
            return code


def _write_geography(path: Path, town: District) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(("层级", "编码", "名称", "上级编码"))
        out.writerow(("区", town.spec.code, town.spec.name, ""))
        for code, name in town.streets:
            out.writerow(("街道", code, name, town.spec.code))
        for community in town.communities:
            out.writerow(("社区", community.code, community.name, community.street_code))
        for community in town.communities:
            for n, grid in enumerate(community.grid_codes, start=1):
                out.writerow(("网格", grid, f"{community.name}第{n}网格", community.code))


def _write_organisations(path: Path, town: District) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(("机构编码", "机构名称", "机构类型", "所属区划编码", "地址", "电话"))
        for code, name, kind, area, address, phone in town.organisations:
            out.writerow((code, name, ORGANISATION_KIND_LABELS[kind], area, address, phone))


# --- people, households and their health ------------------------------------------------------


def _cumulative(weights: Sequence[float]) -> list[float]:
    return list(itertools.accumulate(weights))


def _build_people(
    rng: random.Random, spec: DistrictSpec, count: int, today: dt.date, advance: _Advance
) -> list[Person]:
    task = advance.task("居民 residents", count)
    group_cum = _cumulative([g[2] for g in AGE_GROUPS])
    group_total = group_cum[-1]
    male_share = [ratio / (100 + ratio) for ratio in SEX_RATIO]
    surname_cum = _cumulative([s[1] for s in SURNAMES])
    surname_total = surname_cum[-1]
    surnames = [s[0] for s in SURNAMES]
    id_areas = (spec.code,) * 17 + spec.other_id_areas[:3]  # ~85% first issued in the district
    birth_ranges = _birth_ranges(today)
    used_ids: set[str] = set()
    used_phones: set[str] = set()
    people: list[Person] = []
    random_ = rng.random
    for i in range(count):
        g = bisect.bisect(group_cum, random_() * group_total)
        low, high, _ = AGE_GROUPS[g]
        age = low + int(random_() * (high - low + 1))
        sex = "M" if random_() < male_share[g] else "F"
        first_day, span = birth_ranges[age]
        birth = dt.date.fromordinal(first_day + int(random_() * span))
        surname = surnames[bisect.bisect(surname_cum, random_() * surname_total)]
        name = surname + _given_name(random_, sex)
        area = id_areas[int(random_() * len(id_areas))]
        birth_digits = birth.isoformat().replace("-", "")
        while True:
            sequence = int(random_() * 500) * 2 + (1 if sex == "M" else 0)  # GB 11643: odd men, even women
            first17 = f"{area}{birth_digits}{sequence:03d}"
            if first17 not in used_ids:
                used_ids.add(first17)
                break
        id_number = first17 + check_character(first17)
        roll = random_()
        if roll < 0.04:
            phone = ""  # no phone on record
        elif roll < 0.16:
            phone = f"{spec.phone_area_code}-{'68'[int(random_() * 2)]}{int(random_() * 10_000_000):07d}"
        else:
            phone = _mobile(random_, used_phones)
        people.append(Person(f"P{i + 1:07d}", name, sex, birth, age, id_number, phone))
        if i % 20_000 == 19_999:
            advance.step(task, 20_000)
    advance.step(task, count % 20_000)
    return people


def _birth_ranges(today: dt.date) -> dict[int, tuple[int, int]]:
    """For each age 60-100, the first day ordinal and the number of birth dates giving that age."""
    ranges = {}
    for age in range(AGE_GROUPS[0][0], AGE_GROUPS[-1][1] + 1):
        latest = _years_before(today, age)  # the last birthday that makes this age
        earliest = _years_before(today, age + 1) + dt.timedelta(days=1)
        ranges[age] = (earliest.toordinal(), (latest - earliest).days + 1)
    return ranges


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _pick(random_: Callable[[], float], items: Sequence[str]) -> str:
    return items[int(random_() * len(items))]


def _given_name(random_: Callable[[], float], sex: str) -> str:
    roll = random_()
    if sex == "M":
        if roll < 0.35:
            return _pick(random_, MALE_NAMES)
        if roll < 0.55:
            return _pick(random_, MALE_SINGLE)
        return _pick(random_, MALE_FIRST) + _pick(random_, MALE_SECOND)
    if roll < 0.45:
        return _pick(random_, FEMALE_NAMES)
    if roll < 0.60:
        return _pick(random_, FEMALE_SINGLE)
    return _pick(random_, FEMALE_FIRST) + _pick(random_, FEMALE_SECOND)


def _mobile(random_: Callable[[], float], used: set[str]) -> str:
    while True:
        phone = f"{_pick(random_, MOBILE_PREFIXES)}{int(random_() * 100_000_000):08d}"
        if phone not in used:
            used.add(phone)
            return phone


def _build_households(rng: random.Random, town: District, people: list[Person]) -> list[Household]:
    """Couples share an address; singles live alone or with their children's family."""
    candidates: dict[str, list[Person]] = {"M": [], "F": []}
    for person in people:
        decade = min(3, (person.age - 60) // 10)
        if rng.random() < SPOUSE_PRESENT[person.sex][decade]:
            candidates[person.sex].append(person)
    men, women = candidates["M"], candidates["F"]
    pairs = min(len(men), len(women))
    rng.shuffle(men)
    rng.shuffle(women)
    # Pair by age rank so spouses are of similar age.
    men = sorted(men[:pairs], key=lambda p: p.birth)
    women = sorted(women[:pairs], key=lambda p: p.birth)
    in_couple = {p.person_id for p in men} | {p.person_id for p in women}
    singles = [p for p in people if p.person_id not in in_couple]
    alone_chance = min(0.95, ALONE_SHARE * len(people) / max(1, len(singles)))

    weights = _cumulative([rng.lognormvariate(0, 0.4) for _ in town.communities])
    households: list[Household] = []

    def new_household(members: Sequence[Person], living: LivingArrangement) -> None:
        community = town.communities[bisect.bisect(weights, rng.random() * weights[-1])]
        address, grid = _new_address(rng, community)
        for member in members:
            member.household = len(households)
            member.living = living
        households.append(Household(community, grid, address))

    for man, woman in zip(men, women, strict=True):
        empty_nest = rng.random() < COUPLE_EMPTY_NEST
        new_household(
            (man, woman), LivingArrangement.spouse_only if empty_nest else LivingArrangement.with_family
        )
    for person in singles:
        alone = rng.random() < alone_chance
        new_household((person,), LivingArrangement.alone if alone else LivingArrangement.with_family)
    return households


def _new_address(rng: random.Random, community: Community) -> tuple[str, str]:
    """A free flat in one of the community's compounds, and the grid its building belongs to."""
    random_ = rng.random
    while True:
        c = int(random_() * len(community.compounds))
        road, number = community.compounds[c]
        building = 1 + int(random_() * 24)
        floor = 1 + int(random_() * 18)
        unit = 1 + int(random_() * 4)
        address = f"{road}{number}号{building}栋{unit}单元{floor}{1 + int(random_() * 4):02d}室"
        if address not in community.used_addresses:
            community.used_addresses.add(address)
            grid = community.grid_codes[(c * 7 + building) % len(community.grid_codes)]
            return address, grid


def _assign_health(rng: random.Random, people: list[Person]) -> None:
    insurance_cum = _cumulative([w for _, w in INSURANCE_MIX])
    random_ = rng.random
    for person in people:
        band = _band(person.age)
        decade = min(3, (person.age - 60) // 10)
        conditions = person.conditions
        if random_() < HYPERTENSION[band]:
            conditions.append(CHRONIC["hypertension"])
            person.hypertensive = True
        if random_() < DIABETES[band]:
            conditions.append(CHRONIC["diabetes"])
            person.diabetic = True
        if random_() < CORONARY[band]:
            conditions.append(CHRONIC["coronary"])
        if random_() < STROKE[band]:
            conditions.append(CHRONIC["stroke"])
        if random_() < COPD[band]:
            conditions.append(CHRONIC["copd"])
        if random_() < KNEE_OA[band]:
            conditions.append(CHRONIC["knee_oa"])
        demented = random_() < DEMENTIA[decade]
        if demented:
            conditions.append(CHRONIC["alzheimer"] if random_() < 0.6 else CHRONIC["dementia"])
        disabled_chance = DISABLED[band] * (1.1 if person.sex == "F" else 0.9)
        level = 0
        if random_() < disabled_chance:
            roll, level = random_(), 1
            for share in DISABLED_LEVELS:
                if roll < share:
                    break
                roll -= share
                level += 1
            level = min(level, 4)
        if demented:
            level = min(4, level + 1)  # GB/T 42195-2022: diagnosed dementia raises the level by one
        person.capability = level
        if random_() < DISABILITY_CERT[level]:
            # Worse capability, more severe grade (一级 is the most severe).
            person.disability_grade = max(1, min(4, 5 - level - int(random_() * 2)))
        person.conditions_text = ";".join(f"{code} {name}" for code, name in conditions)
        person.insurance = INSURANCE_MIX[bisect.bisect(insurance_cum, random_() * insurance_cum[-1])][0]
        if person.living is LivingArrangement.alone and random_() < TEKUN_AMONG_ALONE:
            person.tekun = True
        elif random_() < DIBAO * (2.0 if person.living is LivingArrangement.alone else 0.85):
            person.dibao = True


# --- the feeds ----------------------------------------------------------------------------------

# Each feed's rows are lists in the column order of sources/records.py (plus a trailing blank);
# the spec decides headers and order.
HEALTH_FIELDS = tuple(column.field for column in HEALTH_COLUMNS)
INSURANCE_FIELDS = tuple(column.field for column in INSURANCE_COLUMNS)
CIVIL_FIELDS = tuple(column.field for column in CIVIL_COLUMNS)

IMPOSSIBLE_DATES = ("02-30", "02-31", "04-31", "06-31", "09-31", "11-31", "13-01")
CLAIMS_PER_PERSON = (1, 1, 2, 2, 3, 4)
SEX_LABELS = {"M": "男", "F": "女"}
GRADE_LABELS = ("", "一级", "二级", "三级", "四级")

Truth = list[tuple[str, str, str, str, str]]


class _FeedWriter:
    """Builds each feed's rows and their truth rows."""

    def __init__(
        self,
        town: District,
        people: list[Person],
        households: list[Household],
        noise: NoiseConfig,
        today: dt.date,
    ) -> None:
        self.town = town
        self.people = people
        self.households = households
        self.noise = noise
        self.today = today
        self.unknown_community = f"{town.spec.code}999{len(town.communities) % 1000:03d}"
        self.used_phones = {p.phone for p in people if p.phone}
        self.days = [(today - dt.timedelta(days=d)).isoformat() for d in range(731)]  # newest first

    def _agency_view(
        self, random_: Callable[[], float], rng: random.Random, person: Person
    ) -> tuple[str, str, str, str]:
        """How one agency has a person on file (name, ID, birth date, phone): the same on every row."""
        n = self.noise
        name, id_number, birth, phone = person.name, person.id_number, person.birth.isoformat(), person.phone
        roll = random_()
        if roll < n.missing_id:
            id_number = ""
            if random_() < n.birth_transposed:
                birth = transpose_digits(person.birth, rng).isoformat()
        elif roll < n.missing_id + n.legacy_id_15:
            id_number = person.id_number[:6] + person.id_number[8:17]  # GB 11643-1989 15-digit form
        if random_() < n.name_typo:
            name = typo_name(name, rng)
        roll = random_()
        if roll < n.phone_missing:
            phone = drop_phone(phone, rng) or ""
        elif roll < n.phone_missing + n.phone_changed:
            phone = _mobile(random_, self.used_phones)
        elif roll < n.phone_missing + n.phone_changed + n.phone_transposed and phone:
            phone = transpose_digits(phone, rng)
        return name, id_number, birth, phone

    def _community_cell(self, random_: Callable[[], float], household: Household) -> str:
        if random_() < self.noise.community_as_name:
            return household.community.name
        return household.community.code

    def _spoil(
        self, rng: random.Random, fields: Sequence[str], row: list[str], true_id: str, date_field: str
    ) -> str:
        """Make a row invalid on purpose; returns the reason written to the truth file."""
        at = {name: i for i, name in enumerate(fields)}
        kinds = ["id_checksum", "impossible_date", "sex_mismatch"]
        if "community" in at:
            kinds.append("unknown_community")
        kind = rng.choice(kinds)
        if kind in ("id_checksum", "sex_mismatch") and len(row[at["id_number"]]) != 18:
            row[at["id_number"]] = true_id
        number = row[at["id_number"]]
        if kind == "id_checksum":
            row[at["id_number"]] = number[:17] + rng.choice([c for c in "0123456789X" if c != number[17]])
        elif kind == "sex_mismatch":
            row[at["sex"]] = "女" if int(number[16]) % 2 == 1 else "男"
        elif kind == "impossible_date":
            row[at[date_field]] = f"{self.today.year - rng.randint(0, 1)}-{rng.choice(IMPOSSIBLE_DATES)}"
        else:
            row[at["community"]] = self.unknown_community
        return kind

    def health(self, rng: random.Random, truth: Truth, advance: _Advance) -> list[list[str]]:
        n = self.noise
        random_ = rng.random
        days = self.days
        rows: list[list[str]] = []
        serials: dict[str, int] = {}
        task = advance.task("卫健 health", len(self.people))
        for person in self.people:
            if random_() >= 0.95:  # ~95% of elders have a health record (建档)
                continue
            household = self.households[person.household]
            community = household.community.code
            serials[community] = serials.get(community, 0) + 1
            key = f"{community}{serials[community]:05d}"  # 健康档案编号: community code + serial
            measured_day = int(random_() * 365)
            updated = days[max(0, measured_day - int(random_() * 30))]
            systolic = diastolic = glucose = measured = ""
            if random_() < 0.9:  # a tenth of records have no measurement this year
                bp = _blood_pressure(rng, person.hypertensive)
                systolic, diastolic = str(bp[0]), str(bp[1])
                glucose = f"{_glucose(rng, person.diabetic):.1f}"
                measured = days[measured_day]
            row = [
                key,
                person.name,
                SEX_LABELS[person.sex],
                person.birth.isoformat(),
                person.id_number,
                "" if random_() < n.health_phone_missing else person.phone,
                household.address,
                self._community_cell(random_, household),
                household.grid_code if random_() < 0.97 else "",
                LIVING_LABELS[person.living],
                person.insurance,
                person.conditions_text,
                systolic,
                diastolic,
                glucose,
                measured,
                updated,
                "",
            ]
            expected, reason = "accept", ""
            if random_() < n.invalid_rows:
                expected, reason = (
                    "reject",
                    self._spoil(rng, HEALTH_FIELDS, row, person.id_number, "updated_on"),
                )
            rows.append(row)
            truth.append(("health", key, person.person_id, expected, reason))
        advance.step(task, len(self.people))
        return rows

    def insurance(self, rng: random.Random, truth: Truth, advance: _Advance) -> list[list[str]]:
        n = self.noise
        random_ = rng.random
        days = self.days
        hospitals = self.town.hospitals
        rows: list[list[str]] = []
        serial = 0
        task = advance.task("医保 insurance", len(self.people))
        for person in self.people:
            if random_() >= 0.85:  # ~85% of elders had a settled claim this year
                continue
            name, id_number, birth, phone = self._agency_view(random_, rng, person)
            sex = SEX_LABELS[person.sex]
            chronic = [c for c in person.conditions if c[0] in LONG_PRESCRIPTION_CODES]
            street = self.households[person.household].community.street_code
            facilities = self.town.facilities_by_street[street]
            for _ in range(CLAIMS_PER_PERSON[int(random_() * len(CLAIMS_PER_PERSON))]):
                serial += 1
                visit = days[int(random_() * 365)]
                key = f"JS{visit.replace('-', '')}{serial:08d}"  # 结算单号
                if chronic and random_() < 0.75:
                    code, display = chronic[int(random_() * len(chronic))]
                elif person.conditions and random_() < 0.5:
                    code, display = person.conditions[int(random_() * len(person.conditions))]
                else:
                    code, display = ACUTE[int(random_() * len(ACUTE))]
                inpatient = random_() < 0.05
                if inpatient or random_() < 0.25:
                    facility = hospitals[int(random_() * len(hospitals))]
                else:
                    facility = facilities[int(random_() * len(facilities))]
                cost = rng.lognormvariate(9.3, 0.5) if inpatient else rng.lognormvariate(5.6, 0.6)
                long_rx = not inpatient and code in LONG_PRESCRIPTION_CODES and random_() < 0.4
                row = [
                    key,
                    name,
                    id_number,
                    sex,
                    birth,
                    phone,
                    person.insurance,
                    visit,
                    facility,
                    code,
                    display,
                    "是" if long_rx else "否",
                    f"{cost:.2f}",
                    "",
                ]
                expected, reason = "accept", ""
                if random_() < n.invalid_rows:
                    expected, reason = (
                        "reject",
                        self._spoil(rng, INSURANCE_FIELDS, row, person.id_number, "visit_date"),
                    )
                rows.append(row)
                truth.append(("insurance", key, person.person_id, expected, reason))
        advance.step(task, len(self.people))
        return rows

    def civil(self, rng: random.Random, truth: Truth, advance: _Advance) -> list[list[str]]:
        """The 民政 roster: everyone civil affairs has a reason to know, topped up to ~45%."""
        n = self.noise
        random_ = rng.random
        target = round(0.45 * len(self.people))
        priority = [
            p
            for p in self.people
            if p.capability or p.disability_grade or p.dibao or p.tekun or p.age >= 80
            or p.living is LivingArrangement.alone
        ]  # fmt: skip
        chosen = {p.person_id for p in priority}
        others = [p for p in self.people if p.person_id not in chosen]
        chosen.update(
            p.person_id for p in rng.sample(others, min(max(0, target - len(priority)), len(others)))
        )
        rows: list[list[str]] = []
        serial = 0
        task = advance.task("民政 civil affairs", len(self.people))
        for person in self.people:
            if person.person_id not in chosen:
                continue
            serial += 1
            key = f"MZ{self.town.spec.code}{serial:07d}"  # 人员编号
            name, id_number, birth, phone = self._agency_view(random_, rng, person)
            household = self.households[person.household]
            address, community_cell = household.address, self._community_cell(random_, household)
            roll = random_()
            if roll < n.address_moved / 2:  # moved within the community: another building or flat
                address = change_address(address, rng, moved=True)
            elif roll < n.address_moved:  # moved to another community of the district
                moved_to = self.town.communities[int(random_() * len(self.town.communities))]
                address, _grid = _new_address(rng, moved_to)
                community_cell = moved_to.code
            elif roll < n.address_moved + n.address_rewritten:
                address = change_address(address, rng, moved=False)
            assessed = random_() < (0.85 if person.capability else 0.5)
            row = [
                key,
                name,
                id_number,
                SEX_LABELS[person.sex],
                birth,
                phone,
                address,
                community_cell,
                LIVING_LABELS[person.living],
                CAPABILITY_LABELS[person.capability] if assessed else "",
                GRADE_LABELS[person.disability_grade],
                "是" if person.dibao else "否",
                "是" if person.tekun else "否",
                self.days[int(random_() * 730)],
                "",
            ]
            expected, reason = "accept", ""
            if random_() < n.invalid_rows:
                expected, reason = (
                    "reject",
                    self._spoil(rng, CIVIL_FIELDS, row, person.id_number, "updated_on"),
                )
            rows.append(row)
            truth.append(("civil", key, person.person_id, expected, reason))
        advance.step(task, len(self.people))
        return rows


def _blood_pressure(rng: random.Random, hypertensive: bool) -> tuple[int, int]:
    if hypertensive:
        systolic = rng.gauss(142, 16)
        diastolic = rng.gauss(82, 10)
    else:
        systolic = rng.gauss(126, 12)
        diastolic = rng.gauss(76, 8)
    systolic = int(max(90, min(220, systolic)))
    diastolic = int(max(50, min(systolic - 20, 130, diastolic)))
    return systolic, diastolic


def _glucose(rng: random.Random, diabetic: bool) -> float:
    value = rng.gauss(7.6, 1.8) if diabetic else rng.gauss(5.3, 0.6)
    return max(3.5, min(20.0, value))


# --- writing -----------------------------------------------------------------------------------


def _ordered(
    columns: Sequence[Column], fields: Sequence[str], rows: list[list[str]]
) -> Iterator[tuple[str, ...]]:
    """Rows in the spec's column order; a column this generator does not fill stays blank."""
    blank = len(fields)  # every row ends with an empty cell
    positions = [fields.index(column.field) if column.field in fields else blank for column in columns]
    pick = operator.itemgetter(*positions)
    return (pick(row) for row in rows) if len(positions) > 1 else ((pick(row),) for row in rows)


def _write_csv(
    path: Path, columns: Sequence[Column], fields: Sequence[str], rows: list[list[str]], encoding: str
) -> None:
    with path.open("w", encoding=encoding, newline="") as handle:
        out = csv.writer(handle)
        out.writerow([column.headers[0] for column in columns])
        out.writerows(_ordered(columns, fields, rows))


def _write_xlsx(
    path: Path, columns: Sequence[Column], fields: Sequence[str], rows: list[list[str]], created: dt.date
) -> None:
    import xlsxwriter  # several times faster than openpyxl at writing, and reproducible

    book = xlsxwriter.Workbook(path, {"constant_memory": True, "strings_to_numbers": False})
    # A fixed creation date keeps the same seed giving the same bytes.
    book.set_properties({"created": dt.datetime(created.year, created.month, created.day)})
    sheet = book.add_worksheet("老年人花名册")
    sheet.write_row(0, 0, [column.headers[0] for column in columns])
    for index, values in enumerate(_ordered(columns, fields, rows), start=1):
        sheet.write_row(index, 0, values)  # strings throughout: ID numbers must never become numbers
    book.close()
