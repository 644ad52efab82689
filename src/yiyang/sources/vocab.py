"""Value vocabularies of the agency feeds: what a cell may say, and what it means here.

Plain dicts from the text an agency writes to the value the registry keeps, so a feed reader
looks each cell up once. Keys are written without surrounding spaces; readers strip cells.
``docs/feeds.md`` lists the same values for the people who prepare the files.
"""

from __future__ import annotations

# What exports write in an optional cell that has no value (phone, ID number, address, grid).
BLANK_MARKERS = frozenset({"无", "暂无", "不详", "-", "--", "—", "/", "／", "NULL", "null", "N/A", "n/a"})

# GB/T 2261.1-2003 人的性别代码: 0 unknown, 1 male, 2 female, 9 not stated.
SEX: dict[str, str | None] = {
    "男": "M",
    "男性": "M",
    "1": "M",
    "M": "M",
    "m": "M",
    "女": "F",
    "女性": "F",
    "2": "F",
    "F": "F",
    "f": "F",
    "0": None,
    "9": None,
    "未知": None,
    "未知的性别": None,
    "未说明": None,
    "未说明的性别": None,
}

# 居住情况 (卫健) / 居住状况 (民政) -> geo.models.LivingArrangement values.
LIVING_ARRANGEMENTS: dict[str, str] = {
    "独居": "alone",
    "独自居住": "alone",
    "空巢": "spouse_only",
    "仅与配偶同住": "spouse_only",
    "与配偶同住": "spouse_only",
    "夫妻同住": "spouse_only",
    "与子女同住": "with_family",
    "与家人同住": "with_family",
    "与亲属同住": "with_family",
    "其他": "with_family",
}

# Insurance type as the registry keeps it: employee / resident / self_pay / other.
INSURANCE_TYPES: dict[str, str] = {
    "城镇职工基本医疗保险": "employee",
    "职工基本医疗保险": "employee",
    "职工医保": "employee",
    "城镇职工医保": "employee",
    "城乡居民基本医疗保险": "resident",
    "城镇居民基本医疗保险": "resident",
    "居民医保": "resident",
    "城乡居民医保": "resident",
    "新型农村合作医疗": "resident",
    "新农合": "resident",
    "自费": "self_pay",
    "全自费": "self_pay",
}

# 医疗费用支付方式 codes of the resident health file (居民健康档案), which health records often
# export instead of the wording:
# 1 城镇职工基本医疗保险, 2 城镇居民基本医疗保险, 3 新型农村合作医疗, 4 贫困救助,
# 5 商业医疗保险, 6 全公费, 7 全自费, 8 其他.
PAYMENT_METHOD_CODES: dict[str, str] = {
    "1": "employee",
    "2": "resident",
    "3": "resident",
    "4": "other",
    "5": "other",
    "6": "other",
    "7": "self_pay",
    "8": "other",
}


def insurance_type(text: str, codes: bool = False) -> str:
    """The insurance type an agency's wording means; anything unrecognised is "other"."""
    known = INSURANCE_TYPES.get(text)
    if known:
        return known
    if codes and text in PAYMENT_METHOD_CODES:
        return PAYMENT_METHOD_CODES[text]
    # Longer local wordings ("北京市城镇职工基本医疗保险（退休）") still name their scheme.
    if "职工" in text:
        return "employee"
    if "居民" in text or "新农合" in text or "合作医疗" in text:
        return "resident"
    if "自费" in text:
        return "self_pay"
    return "other"


# GB/T 42195-2022 老年人能力评估规范: the five capability levels, also written 0-4.
CAPABILITY_LEVELS: dict[str, str] = {
    "能力完好": "intact",
    "轻度失能": "mild",
    "中度失能": "moderate",
    "重度失能": "severe",
    "完全失能": "total",
    "0": "intact",
    "1": "mild",
    "2": "moderate",
    "3": "severe",
    "4": "total",
}

# GB/T 26341-2010 残疾人残疾分类和分级: grade 1 (most severe) to 4.
DISABILITY_GRADES: dict[str, int | None] = {
    "一级": 1,
    "二级": 2,
    "三级": 3,
    "四级": 4,
    "一": 1,
    "二": 2,
    "三": 3,
    "四": 4,
    "1": 1,
    "2": 2,
    "3": 3,
    "4": 4,
    "1级": 1,
    "2级": 2,
    "3级": 3,
    "4级": 4,
    "无": None,
}

# 低保 / 特困 / 长处方 flags.
YES_NO: dict[str, bool] = {
    "是": True,
    "否": False,
    "Y": True,
    "N": False,
    "y": True,
    "n": False,
    "1": True,
    "0": False,
}

# What a 慢病诊断 / 疾病史 cell says when the person has none.
NO_CONDITION = frozenset({"无", "否", "无慢病", "无慢性病"})

# Common Chinese disease names in community records -> (ICD-10 code, display).
# Stroke without a subtype maps to I63 (cerebral infarction), the usual case in community
# records; a feed that knows better writes the code itself.
CONDITION_NAMES: dict[str, tuple[str, str]] = {
    "高血压": ("I10", "高血压"),
    "高血压病": ("I10", "高血压"),
    "原发性高血压": ("I10", "高血压"),
    "糖尿病": ("E11", "2型糖尿病"),
    "2型糖尿病": ("E11", "2型糖尿病"),
    "Ⅱ型糖尿病": ("E11", "2型糖尿病"),
    "二型糖尿病": ("E11", "2型糖尿病"),
    "1型糖尿病": ("E10", "1型糖尿病"),
    "冠心病": ("I25", "冠心病"),
    "冠状动脉粥样硬化性心脏病": ("I25", "冠心病"),
    "心力衰竭": ("I50", "心力衰竭"),
    "心衰": ("I50", "心力衰竭"),
    "心房颤动": ("I48", "心房颤动"),
    "房颤": ("I48", "心房颤动"),
    "脑卒中": ("I63", "脑卒中"),
    "中风": ("I63", "脑卒中"),
    "脑梗死": ("I63", "脑梗死"),
    "脑梗塞": ("I63", "脑梗死"),
    "脑梗": ("I63", "脑梗死"),
    "脑出血": ("I61", "脑出血"),
    "慢阻肺": ("J44", "慢性阻塞性肺疾病"),
    "慢性阻塞性肺疾病": ("J44", "慢性阻塞性肺疾病"),
    "慢性阻塞性肺病": ("J44", "慢性阻塞性肺疾病"),
    "COPD": ("J44", "慢性阻塞性肺疾病"),
    "慢性支气管炎": ("J42", "慢性支气管炎"),
    "哮喘": ("J45", "哮喘"),
    "支气管哮喘": ("J45", "哮喘"),
    "阿尔茨海默病": ("G30", "阿尔茨海默病"),
    "阿尔茨海默症": ("G30", "阿尔茨海默病"),
    "痴呆": ("F03", "痴呆"),
    "老年痴呆": ("F03", "痴呆"),
    "血管性痴呆": ("F01", "血管性痴呆"),
    "轻度认知障碍": ("F06.7", "轻度认知障碍"),
    "帕金森病": ("G20", "帕金森病"),
    "帕金森": ("G20", "帕金森病"),
    "骨质疏松": ("M81", "骨质疏松"),
    "骨质疏松症": ("M81", "骨质疏松"),
    "骨关节炎": ("M19", "骨关节炎"),
    "膝骨关节炎": ("M17", "膝骨关节炎"),
    "慢性肾脏病": ("N18", "慢性肾脏病"),
    "慢性肾病": ("N18", "慢性肾脏病"),
    "高脂血症": ("E78", "血脂异常"),
    "血脂异常": ("E78", "血脂异常"),
    "高尿酸血症": ("E79.0", "高尿酸血症"),
    "痛风": ("M10", "痛风"),
    "白内障": ("H25", "老年性白内障"),
    "老年性白内障": ("H25", "老年性白内障"),
    "青光眼": ("H40", "青光眼"),
    "恶性肿瘤": ("C80", "恶性肿瘤"),
    "癌症": ("C80", "恶性肿瘤"),
    "肺癌": ("C34", "肺癌"),
    "胃癌": ("C16", "胃癌"),
    "肝癌": ("C22", "肝癌"),
    "结直肠癌": ("C18", "结直肠癌"),
    "乳腺癌": ("C50", "乳腺癌"),
    "肺结核": ("A16", "肺结核"),
    "慢性乙型肝炎": ("B18.1", "慢性乙型肝炎"),
    "抑郁症": ("F32", "抑郁症"),
    "焦虑症": ("F41", "焦虑症"),
    # 国家基本公共卫生服务规范（第三版）严重精神障碍: the six managed diagnoses.
    "精神分裂症": ("F20", "精神分裂症"),
    "分裂情感性障碍": ("F25", "分裂情感性障碍"),
    "偏执性精神病": ("F22", "偏执性精神病"),
    "双相情感障碍": ("F31", "双相情感障碍"),
    "双相障碍": ("F31", "双相情感障碍"),
    "癫痫所致精神障碍": ("F06.8", "癫痫所致精神障碍"),
    "精神发育迟滞伴发精神障碍": ("F79", "精神发育迟滞伴发精神障碍"),
    # The category itself, when a record names no diagnosis: F99 mental disorder, unspecified.
    "严重精神障碍": ("F99", "严重精神障碍"),
}
