"""Record linkage: comparison levels, decisions, blocking, noise, and a synthetic truth set."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

import pytest

from yiyang.residents.names import name_pinyin
from yiyang.sources.linkage import (
    BIRTH_DATE_LEVELS,
    LINK_THRESHOLD,
    NAME_LEVELS,
    REVIEW_THRESHOLD,
    CandidateFilter,
    LinkIndex,
    LinkKeys,
    block_keys,
    chinese_numeral_value,
    compare,
    decide,
    make_keys,
    normalise_address,
    normalise_phone,
)
from yiyang.sources.noise import (
    HOMOPHONE_GROUPS,
    HOMOPHONES,
    change_address,
    drop_phone,
    slip_digit,
    transpose_digits,
    typo_name,
)

BORN = dt.date(1948, 3, 12)
ADDRESS = "北京市海淀区学院路街道和平里小区3号楼2单元502室"


def keys(
    name: str = "王秀英",
    sex: str | None = "F",
    birth_date: dt.date | None = BORN,
    phone: str | None = "13912345678",
    address: str | None = ADDRESS,
) -> LinkKeys:
    return make_keys(name, sex, birth_date, phone, address)


# --- the synthetic truth set ------------------------------------------------------------------

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈姚卢傅钟"
FEMALE_GIVEN = "秀英兰玉桂芳丽珍华凤淑梅霞红云琴萍荣静慧敏莉燕艳娟洁琳雪春美月翠巧"
MALE_GIVEN = "建国明华志强军伟平德文成海林清永刚勇杰福宝庆祥忠贵金龙生发荣新"
_ESTATE_NAMES = "和平花园学院双榆知春太平牡丹塔院健德小关翠微万寿紫竹永定清河西苑青龙安宁明光北洼"
ESTATES = tuple(
    _ESTATE_NAMES[index : index + 2] + kind
    for index in range(0, len(_ESTATE_NAMES), 2)
    for kind in ("里", "东里", "西里", "北里", "南里", "家园", "新村", "公寓", "花园", "嘉园")
)  # 200 estates
STREETS = ("学院路", "花园路", "北太平庄", "海淀", "中关村")


@dataclass
class Person:
    key: int
    name: str
    sex: str
    birth_date: dt.date
    phone: str | None
    address: str


def _given_name(rng: random.Random, sex: str) -> str:
    pool = FEMALE_GIVEN if sex == "F" else MALE_GIVEN
    return "".join(rng.choice(pool) for _ in range(1 if rng.random() < 0.3 else 2))


def _birth_date(rng: random.Random) -> dt.date:
    return dt.date(1930, 1, 1) + dt.timedelta(days=rng.randrange(365 * 30))


def _phone(rng: random.Random) -> str:
    return rng.choice(("139", "138", "135", "186", "150", "131")) + f"{rng.randrange(10**8):08d}"


def _address(rng: random.Random) -> str:
    street, estate = rng.choice(STREETS), rng.choice(ESTATES)
    building, unit = rng.randint(1, 30), rng.randint(1, 6)
    room = f"{rng.randint(1, 18)}0{rng.randint(1, 4)}"
    return f"北京市海淀区{street}街道{estate}小区{building}号楼{unit}单元{room}室"


def generate_people(rng: random.Random, count: int, first_key: int = 0) -> list[Person]:
    """People, some of them in households (a couple sharing phone and address) and twins."""
    people: list[Person] = []
    while len(people) < count:
        key = first_key + len(people)
        surname = rng.choice(SURNAMES)
        sex = rng.choice("MF")
        phone = _phone(rng) if rng.random() < 0.8 else None
        person = Person(key, surname + _given_name(rng, sex), sex, _birth_date(rng), phone, _address(rng))
        people.append(person)
        draw = rng.random()
        if draw < 0.25:  # a spouse: same phone and address, another name and birth date
            spouse_sex = "F" if sex == "M" else "M"
            spouse = Person(
                key + 1,
                rng.choice(SURNAMES) + _given_name(rng, spouse_sex),
                spouse_sex,
                _birth_date(rng),
                phone,
                person.address,
            )
            people.append(spouse)
        elif draw < 0.27:  # a twin: same surname, birth date, phone and address, another given name
            twin_sex = rng.choice("MF")
            given = _given_name(rng, twin_sex)
            while surname + given == person.name:
                given = _given_name(rng, twin_sex)
            people.append(
                Person(key + 1, surname + given, twin_sex, person.birth_date, phone, person.address)
            )
    return people[:count]


def decoys_for(people: list[Person], rng: random.Random, first_key: int) -> list[Person]:
    """Other people made to look like someone: namesakes, homophones, the same birthday.

    They look like the first tenth of ``people``, which is in random order.
    """
    decoys: list[Person] = []
    for person in people[: len(people) // 10]:
        key = first_key + len(decoys)
        kind = rng.randrange(4)
        other_sex = "F" if person.sex == "M" else "M"
        if kind == 0:  # same name, same birth date, other sex, phone and address
            decoy = Person(key, person.name, other_sex, person.birth_date, _phone(rng), _address(rng))
        elif kind == 1:  # a homophone name, same sex, born another day
            decoy = Person(
                key, typo_name(person.name, rng), person.sex, _birth_date(rng), _phone(rng), _address(rng)
            )
        elif kind == 2:  # the same name and sex, born another day
            decoy = Person(key, person.name, person.sex, _birth_date(rng), _phone(rng), _address(rng))
        else:  # same surname and birthday in the same estate, another given name
            given = _given_name(rng, person.sex)
            name = person.name[0] + given
            if name == person.name:
                continue
            decoy = Person(
                key, name, person.sex, person.birth_date, _phone(rng), change_address(person.address, rng)
            )
        decoys.append(decoy)
    return decoys


@dataclass
class Row:
    truth: int | None  # the person's key, or None for someone not in the registry
    keys: LinkKeys


def noisy_row(person: Person, rng: random.Random) -> LinkKeys:
    """A row for the person from a feed without an ID number, with realistic mistakes."""
    name = typo_name(person.name, rng) if rng.random() < 0.2 else person.name
    birth_date: dt.date | None = person.birth_date
    draw = rng.random()
    if draw < 0.04:
        birth_date = transpose_digits(person.birth_date, rng)
    elif draw < 0.07:
        birth_date = slip_digit(person.birth_date, rng)
    elif draw < 0.09:
        birth_date = None
    phone: str | None = person.phone
    draw = rng.random()
    if phone is None or draw < 0.3:
        phone = drop_phone(phone, rng)
    elif draw < 0.34:
        phone = transpose_digits(phone, rng)
    elif draw < 0.37:
        phone = slip_digit(phone, rng)
    address: str | None = person.address
    draw = rng.random()
    if draw < 0.3:
        address = change_address(person.address, rng)
    elif draw < 0.5:
        address = None  # the insurance feed has no address column
    sex = None if rng.random() < 0.03 else person.sex
    return make_keys(name, sex, birth_date, phone, address)


def truth_set(seed: int, people_count: int) -> tuple[list[Person], list[Row]]:
    """The registry (people, their twins and spouses, decoys) and no-ID rows with known truth."""
    rng = random.Random(seed)
    people = generate_people(rng, people_count)
    rng.shuffle(people)
    decoys = decoys_for(people, rng, first_key=len(people))
    newcomers = generate_people(rng, people_count // 30, first_key=len(people) + len(decoys))
    rows = [Row(person.key, noisy_row(person, rng)) for person in rng.sample(people, int(people_count * 0.3))]
    rows += [Row(None, noisy_row(person, rng)) for person in newcomers]
    # Namesakes not in the registry: same name and birth date as a resident, other sex and phone
    # (taken from people no decoy copies, so the registry holds no identical one).
    for person in rng.sample(people[len(people) // 10 :], people_count // 100):
        other_sex = "F" if person.sex == "M" else "M"
        rows.append(Row(None, make_keys(person.name, other_sex, person.birth_date, _phone(rng), None)))
    rng.shuffle(rows)
    return people + decoys, rows


def link_all(
    registry: list[Person], rows: list[Row], link_threshold: float, review_threshold: float
) -> tuple[float, float, dict[str, int]]:
    """Precision and recall of link decisions, and how many rows got each outcome."""
    index = LinkIndex()
    for person in registry:
        index.add(
            person.key, make_keys(person.name, person.sex, person.birth_date, person.phone, person.address)
        )
    outcomes = {"link": 0, "review": 0, "new": 0}
    right = wrong = 0
    for row in rows:
        match = index.best_match(row.keys)
        outcome = "new" if match is None else decide(match[1].weight, link_threshold, review_threshold)
        outcomes[outcome] += 1
        if outcome == "link":
            if match is not None and match[0] == row.truth:
                right += 1
            else:
                wrong += 1
    in_registry = sum(1 for row in rows if row.truth is not None)
    precision = right / (right + wrong) if right + wrong else 1.0
    return precision, right / in_registry, outcomes


# --- names and pinyin -------------------------------------------------------------------------


def test_name_pinyin_is_lowercase_toneless_and_space_separated() -> None:
    assert name_pinyin("王丽") == "wang li"
    assert name_pinyin("王　秀英") == "wang xiu ying"  # a full-width space typed inside the name
    assert name_pinyin("单田芳") == "shan tian fang"  # 单 as a surname reads shan
    assert name_pinyin("阿依古丽·买买提") == "a yi gu li mai mai ti"


def test_every_homophone_group_shares_one_pinyin() -> None:
    # given the homophone table the noise functions draw on
    pairs = sum(len(group) * (len(group) - 1) // 2 for group in HOMOPHONE_GROUPS)
    # then it is big enough and every group really is one syllable
    assert pairs >= 40
    for group in HOMOPHONE_GROUPS:
        assert len({name_pinyin(char) for char in group}) == 1, group


# --- normalisation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "written",
    [
        "北京市海淀区学院路街道和平里小区3号楼2单元502室",
        "和平里小区三号楼二单元五〇二室",
        "和平里小区3號楼2单元502室",
        "海淀区 和平里小区 ３-２-５０２",
        "和平里小区3栋2单元502",
    ],
)
def test_one_address_written_many_ways_normalises_to_one_key(written: str) -> None:
    assert normalise_address(written) == "和平里小区3栋2单元502"


@pytest.mark.parametrize(
    "address", [ADDRESS, "广州市番禺区市桥街道东环路十二号", "学院路12号3栋2单元502室", "菜市口大街5号"]
)
def test_normalising_twice_changes_nothing(address: str) -> None:
    once = normalise_address(address)
    assert normalise_address(once) == once


def test_places_inside_a_community_are_not_taken_for_a_district() -> None:
    assert normalise_address("翠微小区12号楼") == "翠微小区12栋"
    assert normalise_address("广州市番禺区市桥街道东环路十二号") == "东环路12号"


@pytest.mark.parametrize(
    ("numeral", "value"), [("三", 3), ("十二", 12), ("二十", 20), ("一百零五", 105), ("五〇二", 502)]
)
def test_chinese_numerals(numeral: str, value: int) -> None:
    assert chinese_numeral_value(numeral) == value


@pytest.mark.parametrize("placeholder", [None, "", "无", "-", "00000000000", "13800000000", "123"])
def test_blank_and_placeholder_phones_are_no_phone(placeholder: str | None) -> None:
    assert normalise_phone(placeholder) is None


def test_phone_keeps_digits_without_country_code() -> None:
    assert normalise_phone("+86 139-1234-5678") == "13912345678"


# --- comparison levels ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row_name", "level"),
    [
        ("王秀英", "exact"),
        ("汪秀瑛", "pinyin_exact"),
        ("王秀莹", "pinyin_exact"),
        ("王秀音", "pinyin_fuzzy"),  # yin / ying: front and back nasal folded
        ("王秀兰", "one_syllable"),
        ("王英", "one_syllable"),
        ("李淑珍", "different"),
    ],
)
def test_name_levels(row_name: str, level: str) -> None:
    assert compare(keys(name=row_name), keys()).levels["name"] == level


def test_two_character_names_sharing_only_the_surname_are_different() -> None:
    assert compare(keys(name="王丽"), keys(name="王芳")).levels["name"] == "different"


@pytest.mark.parametrize(
    ("born", "level"),
    [
        (BORN, "exact"),
        (dt.date(1948, 12, 3), "transposed"),  # day and month swapped
        (dt.date(1948, 3, 21), "transposed"),  # the day's digits swapped
        (dt.date(1984, 3, 12), "transposed"),  # the year's last digits swapped
        (dt.date(1949, 3, 12), "one_digit"),
        (dt.date(1951, 7, 30), "different"),
        (None, "missing"),
    ],
)
def test_birth_date_levels(born: dt.date | None, level: str) -> None:
    assert compare(keys(birth_date=born), keys()).levels["birth_date"] == level


@pytest.mark.parametrize(
    ("phone", "level"),
    [
        ("139 1234 5678", "exact"),
        ("13912345687", "one_edit"),  # two adjacent digits swapped
        ("13912345670", "one_edit"),  # one digit wrong
        ("13987654321", "different"),
        ("无", "missing"),
    ],
)
def test_phone_levels(phone: str, level: str) -> None:
    assert compare(keys(phone=phone), keys()).levels["phone"] == level


@pytest.mark.parametrize(
    ("address", "level"),
    [
        ("和平里小区三号楼二单元五〇二室", "exact"),
        ("学院路和平里小区3号楼2单元502室", "same_address"),  # a road the normaliser keeps
        ("和平里小区7号楼1单元301室", "same_area"),  # moved within the estate
        ("双榆树小区3号楼2单元502室", "different"),
        (None, "missing"),
    ],
)
def test_address_levels(address: str | None, level: str) -> None:
    assert compare(keys(address=address), keys()).levels["address"] == level


def test_sex_levels() -> None:
    assert compare(keys(sex="女"), keys()).levels["sex"] == "agree"
    assert compare(keys(sex="M"), keys()).levels["sex"] == "disagree"
    assert compare(keys(sex=None), keys()).levels["sex"] == "missing"


def test_weight_is_the_sum_of_the_field_weights() -> None:
    comparison = compare(keys(name="王秀瑛", phone=None), keys())
    assert comparison.weight == pytest.approx(sum(comparison.weights.values()), abs=0.05)
    assert comparison.weights["name"] == pytest.approx(NAME_LEVELS[1].weight, abs=0.01)
    assert comparison.weights["birth_date"] == pytest.approx(BIRTH_DATE_LEVELS[0].weight, abs=0.01)
    assert comparison.weights["phone"] == 0.0


def test_better_agreement_never_weighs_less() -> None:
    # each comparison's levels, in the order listed, are worth less and less (missing aside)
    for levels in (NAME_LEVELS[:-1], BIRTH_DATE_LEVELS[:-1]):
        weights = [level.weight for level in levels]
        assert weights == sorted(weights, reverse=True)


def test_two_different_valid_id_numbers_never_link() -> None:
    row = make_keys("王秀英", "F", BORN, "13912345678", ADDRESS, id_number="110108194803120023")
    resident = make_keys("王秀英", "F", BORN, "13912345678", ADDRESS, id_number="110108194803120040")
    assert decide(compare(row, resident).weight, LINK_THRESHOLD, REVIEW_THRESHOLD) == "new"


# --- decisions --------------------------------------------------------------------------------


def test_decide_at_the_thresholds() -> None:
    assert decide(18.0, 18.0, 15.0) == "link"
    assert decide(17.99, 18.0, 15.0) == "review"
    assert decide(15.0, 18.0, 15.0) == "review"
    assert decide(14.99, 18.0, 15.0) == "new"


def outcome(row: LinkKeys, resident: LinkKeys) -> str:
    return decide(compare(row, resident).weight, LINK_THRESHOLD, REVIEW_THRESHOLD)


def test_homophone_name_links() -> None:
    # given a resident 王丽 and a row written 王莉 with the same birth date and sex, no phone
    resident = keys(name="王丽")
    row = keys(name="王莉", phone=None, address=None)
    # then it links
    assert outcome(row, resident) == "link"


def test_same_name_and_birth_date_but_other_sex_and_phone_does_not_link() -> None:
    resident = keys()
    row = keys(sex="M", phone="13687654321", address=None)
    assert outcome(row, resident) != "link"


def test_twins_do_not_link() -> None:
    # given a twin sister in the registry: same surname, birth date, address and phone
    resident = keys(name="王秀英")
    # when a row for the other twin arrives
    row = keys(name="王秀兰")
    # then it does not link: a shared given-name character leaves it to a person to decide,
    # a wholly different given name makes a new resident
    assert outcome(row, resident) == "review"
    assert outcome(keys(name="王淑珍"), resident) == "new"


def test_transposed_birth_date_with_the_same_name_and_phone_links() -> None:
    row = keys(birth_date=dt.date(1948, 12, 3), address=None)
    assert outcome(row, keys()) == "link"


def test_spouse_sharing_phone_and_address_does_not_link() -> None:
    resident = keys(name="李建国", sex="M", birth_date=dt.date(1946, 8, 1))
    assert outcome(keys(), resident) == "new"


# --- the index --------------------------------------------------------------------------------


def test_best_match_picks_the_right_person_among_candidates() -> None:
    index = LinkIndex()
    index.add(1, keys(name="王秀兰"))  # twin
    index.add(2, keys())  # the person
    index.add(3, keys(sex="M", phone="13600000001", address=None))  # namesake, other sex
    index.add(4, keys(birth_date=dt.date(1950, 1, 1), phone=None, address=None))  # namesake, other day
    match = index.best_match(keys(name="王秀瑛", phone=None, address=None))
    assert match is not None
    assert match[0] == 2
    assert match[1].levels["name"] == "pinyin_exact"


def test_ties_go_to_the_lower_id() -> None:
    index = LinkIndex()
    index.add(9, keys())
    index.add(5, keys())
    match = index.best_match(keys())
    assert match is not None and match[0] == 5


def test_a_row_finds_a_resident_through_any_one_block() -> None:
    index = LinkIndex()
    index.add(1, keys())
    # only the phone is shared
    assert index.candidates(keys(name="李淑珍", birth_date=dt.date(1950, 1, 1))) == {1}
    # only the name and birth year (day and month swapped, no phone)
    assert index.candidates(keys(birth_date=dt.date(1948, 12, 3), phone=None)) == {1}
    # only the name and day of year (a slip in the year, no phone)
    assert index.candidates(keys(birth_date=dt.date(1946, 3, 12), phone=None)) == {1}
    # a row without a birth date, by name
    assert index.candidates(keys(birth_date=None, phone=None)) == {1}
    # nothing shared
    assert index.candidates(keys(name="李淑珍", birth_date=dt.date(1950, 1, 1), phone=None)) == set()


def test_removed_and_replaced_residents_leave_no_trace() -> None:
    index = LinkIndex()
    index.add(1, keys())
    index.add(1, keys(name="李淑珍", phone="13500000001"))
    assert index.candidates(keys(birth_date=dt.date(1940, 1, 1))) == set()
    index.remove(1)
    assert len(index) == 0
    assert index.best_match(keys(name="李淑珍", phone="13500000001")) is None


def test_block_keys_name_what_to_load_for_a_batch() -> None:
    batch = [keys(), keys(name="李淑珍", birth_date=None, phone="无")]
    assert block_keys(batch) == {
        "birth_date": {BORN},
        "name_pinyin": {"wang xiu ying", "li shu zhen"},
        "phone": {"13912345678"},
    }


def test_make_keys_takes_stored_pinyin_as_given() -> None:
    stored = make_keys("王秀英", "F", BORN, None, None, name_pinyin="wang xiu ying")
    assert stored == make_keys("王秀英", "F", BORN, None, None)


# --- noise ------------------------------------------------------------------------------------


def test_noise_is_deterministic_for_a_seed() -> None:
    def corrupt(seed: int) -> tuple:
        rng = random.Random(seed)
        return (
            typo_name("王秀英", rng),
            transpose_digits("13912345678", rng),
            transpose_digits(BORN, rng),
            slip_digit(BORN, rng),
            drop_phone("13912345678", rng),
            change_address(ADDRESS, rng),
        )

    assert corrupt(7) == corrupt(7)


def test_typo_name_swaps_one_character_for_a_homophone() -> None:
    rng = random.Random(1)
    for _ in range(50):
        typo = typo_name("王秀英", rng)
        assert typo != "王秀英"
        assert name_pinyin(typo) == "wang xiu ying"
        assert sum(a != b for a, b in zip(typo, "王秀英", strict=True)) == 1
    assert typo_name("乔乔", rng) == "乔乔"  # no homophone in the table: unchanged
    assert all(char not in HOMOPHONES[char] for char in HOMOPHONES)


def test_transposed_and_slipped_values_land_on_their_levels() -> None:
    rng = random.Random(2)
    for _ in range(50):
        assert compare(keys(phone=transpose_digits("13912345678", rng)), keys()).levels["phone"] == "one_edit"
        assert compare(keys(phone=slip_digit("13912345678", rng)), keys()).levels["phone"] == "one_edit"
        assert (
            compare(keys(birth_date=transpose_digits(BORN, rng)), keys()).levels["birth_date"] == "transposed"
        )
        assert compare(keys(birth_date=slip_digit(BORN, rng)), keys()).levels["birth_date"] == "one_digit"


def test_rewritten_address_keeps_its_key_and_a_move_does_not() -> None:
    rng = random.Random(3)
    for _ in range(50):
        rewritten = change_address(ADDRESS, rng, moved=False)
        moved = change_address(ADDRESS, rng, moved=True)
        assert normalise_address(rewritten) == normalise_address(ADDRESS), rewritten
        assert compare(keys(address=moved), keys()).levels["address"] == "same_area", moved


# --- the synthetic truth set ------------------------------------------------------------------


def test_truth_set_precision_and_recall() -> None:
    # given 3,000 people with spouses, twins and look-alike decoys in the registry, and
    # no-ID rows for 30% of them with homophones, transposed and slipped digits, missing
    # phones and moved or re-written addresses, plus rows for people not in the registry
    registry, rows = truth_set(seed=20261123, people_count=3000)
    # when each row is linked at the calibrated thresholds
    precision, recall, outcomes = link_all(registry, rows, LINK_THRESHOLD, REVIEW_THRESHOLD)
    # then links are right, and nearly every row whose person is registered links
    assert precision >= 0.995, outcomes
    assert recall >= 0.98, outcomes
    assert outcomes["review"] < len(rows) * 0.05


def test_unchanged_rows_all_link_to_themselves() -> None:
    registry, _ = truth_set(seed=5, people_count=500)
    index = LinkIndex()
    for person in registry:
        index.add(
            person.key, make_keys(person.name, person.sex, person.birth_date, person.phone, person.address)
        )
    for person in registry[:200]:
        match = index.best_match(make_keys(person.name, person.sex, person.birth_date, person.phone, None))
        assert match is not None
        assert match[0] == person.key
        assert match[1].weight >= LINK_THRESHOLD


# --- the candidate pre-filter -----------------------------------------------------------------


@pytest.mark.parametrize("seed", [3, 11])
def test_candidate_filter_keeps_exactly_the_residents_the_index_would_compare(seed: int) -> None:
    """A batch's query loads residents by birth date, pinyin or phone; the filter must keep
    every one that shares a block with a row (or linkage would change) and, to be worth its
    place, drop the rest."""
    registry, rows = truth_set(seed, 3000)
    rng = random.Random(seed)
    index = LinkIndex()
    stored = {}
    for person in registry:
        keys = make_keys(person.name, person.sex, person.birth_date, person.phone, person.address)
        index.add(person.key, keys)
        stored[person.key] = keys
    for batch in (rng.sample(rows, 200), [row for row in rows if row.keys.birth_date is None][:50]):
        relevant = CandidateFilter()
        compared: set[int] = set()
        for row in batch:
            relevant.add_row(row.keys, (row.keys.phone,) if row.keys.phone else ())
            compared |= index.candidates(row.keys)
        kept = {
            key
            for key, keys in stored.items()
            if relevant.wants(keys.birth_date, keys.name_pinyin, keys.phone)
        }
        assert kept == compared
        assert len(kept) < len(stored) / 2
