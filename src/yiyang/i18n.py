"""User-visible text: Chinese (zh-CN) first, English second.

Messages live in catalogues keyed by a stable id. Pages are zh-CN unless the person picks
English (``?lang=en``, remembered in a ``lang`` cookie).
"""

from __future__ import annotations

from collections.abc import Callable

LANGUAGES = ("zh-CN", "en")

CATALOGUE: dict[str, dict[str, str]] = {
    "app.title": {"zh-CN": "医养结合服务平台", "en": "Community medical-and-elderly care"},
    "nav.residents": {"zh-CN": "居民档案", "en": "Residents"},
    "nav.reviews": {"zh-CN": "待核对匹配", "en": "Link reviews"},
    "nav.imports": {"zh-CN": "数据导入", "en": "Imports"},
    "nav.areas": {"zh-CN": "辖区", "en": "Areas"},
    "search.placeholder": {"zh-CN": "姓名、拼音、身份证号或电话", "en": "name, pinyin, ID number or phone"},
    "search.button": {"zh-CN": "查询", "en": "Search"},
    "search.results": {"zh-CN": "共 {total} 人", "en": "{total} residents"},
    "search.none": {"zh-CN": "没有找到居民", "en": "No residents found"},
    "resident.name": {"zh-CN": "姓名", "en": "Name"},
    "resident.sex": {"zh-CN": "性别", "en": "Sex"},
    "resident.birth_date": {"zh-CN": "出生日期", "en": "Birth date"},
    "resident.age": {"zh-CN": "年龄", "en": "Age"},
    "resident.community": {"zh-CN": "社区", "en": "Community"},
    "resident.needs_review": {"zh-CN": "待核对", "en": "needs review"},
    "profile.facts": {"zh-CN": "档案信息及来源", "en": "Profile facts and their sources"},
    "profile.attribute": {"zh-CN": "项目", "en": "Item"},
    "profile.value": {"zh-CN": "值", "en": "Value"},
    "profile.source": {"zh-CN": "来源", "en": "Source"},
    "profile.observed_at": {"zh-CN": "采集时间", "en": "Observed"},
    "profile.recorded_at": {"zh-CN": "入库时间", "en": "Recorded"},
    "profile.conditions": {"zh-CN": "慢病诊断", "en": "Conditions"},
    "profile.observations": {"zh-CN": "最近测量", "en": "Latest observations"},
    "profile.sources": {"zh-CN": "原始记录", "en": "Source records"},
    "profile.history": {"zh-CN": "变更历史", "en": "Change history"},
    "profile.first_seen": {"zh-CN": "首次记录", "en": "First seen"},
    "profile.last_seen": {"zh-CN": "最近记录", "en": "Last seen"},
    "profile.long_prescription": {"zh-CN": "长处方", "en": "long prescription"},
    "reviews.title": {"zh-CN": "待人工核对的匹配", "en": "Possible matches to review"},
    "reviews.score": {"zh-CN": "匹配分", "en": "Score"},
    "reviews.same": {"zh-CN": "是同一人（合并）", "en": "Same person (merge)"},
    "reviews.different": {"zh-CN": "不是同一人", "en": "Different people"},
    "reviews.none": {"zh-CN": "没有待核对的记录", "en": "Nothing to review"},
    "imports.title": {"zh-CN": "导入批次", "en": "Import runs"},
    "imports.file": {"zh-CN": "文件", "en": "File"},
    "imports.feed": {"zh-CN": "数据来源", "en": "Feed"},
    "imports.status": {"zh-CN": "状态", "en": "Status"},
    "imports.counts": {"zh-CN": "结果", "en": "Outcome"},
    "imports.started": {"zh-CN": "开始时间", "en": "Started"},
    "feed.health": {"zh-CN": "卫健", "en": "Health"},
    "feed.insurance": {"zh-CN": "医保", "en": "Insurance"},
    "feed.civil": {"zh-CN": "民政", "en": "Civil affairs"},
    "feed.staff": {"zh-CN": "工作人员", "en": "Staff"},
    "sex.M": {"zh-CN": "男", "en": "Male"},
    "sex.F": {"zh-CN": "女", "en": "Female"},
    "attr.name": {"zh-CN": "姓名", "en": "Name"},
    "attr.id_number": {"zh-CN": "身份证号", "en": "ID number"},
    "attr.sex": {"zh-CN": "性别", "en": "Sex"},
    "attr.birth_date": {"zh-CN": "出生日期", "en": "Birth date"},
    "attr.phone": {"zh-CN": "联系电话", "en": "Phone"},
    "attr.address": {"zh-CN": "住址", "en": "Address"},
    "attr.community_code": {"zh-CN": "所属社区", "en": "Community"},
    "attr.grid_code": {"zh-CN": "所属网格", "en": "Grid"},
    "attr.insurance_type": {"zh-CN": "医保类型", "en": "Insurance"},
    "attr.living_arrangement": {"zh-CN": "居住情况", "en": "Living arrangement"},
    "attr.dibao": {"zh-CN": "低保", "en": "Minimum living allowance"},
    "attr.tekun": {"zh-CN": "特困", "en": "Destitute support"},
    "attr.disability_cert_grade": {"zh-CN": "残疾等级", "en": "Disability grade"},
    "attr.capability_level": {"zh-CN": "能力等级", "en": "Capability level"},
    "value.alone": {"zh-CN": "独居", "en": "lives alone"},
    "value.spouse_only": {"zh-CN": "空巢（仅与配偶同住）", "en": "with spouse only"},
    "value.with_family": {"zh-CN": "与家人同住", "en": "with family"},
    "value.intact": {"zh-CN": "能力完好", "en": "intact"},
    "value.mild": {"zh-CN": "轻度失能", "en": "mildly impaired"},
    "value.moderate": {"zh-CN": "中度失能", "en": "moderately impaired"},
    "value.severe": {"zh-CN": "重度失能", "en": "severely impaired"},
    "value.total": {"zh-CN": "完全失能", "en": "totally impaired"},
    "value.employee": {"zh-CN": "职工医保", "en": "employee insurance"},
    "value.resident": {"zh-CN": "居民医保", "en": "resident insurance"},
    "value.self_pay": {"zh-CN": "自费", "en": "self-pay"},
    "value.true": {"zh-CN": "是", "en": "yes"},
    "value.false": {"zh-CN": "否", "en": "no"},
    "loinc.85354-9": {"zh-CN": "血压", "en": "Blood pressure"},
    "loinc.14771-0": {"zh-CN": "空腹血糖", "en": "Fasting glucose"},
    "error.not_found": {"zh-CN": "未找到", "en": "Not found"},
    "link.id_number": {"zh-CN": "身份证号精确匹配", "en": "matched on ID number"},
    "link.probabilistic": {"zh-CN": "概率匹配", "en": "probabilistic match"},
    "link.new": {"zh-CN": "新建档案", "en": "new record"},
    "link.review": {"zh-CN": "待人工核对", "en": "waiting for review"},
    "link.manual": {"zh-CN": "人工合并/拆分", "en": "moved by merge or unmerge"},
    # tiers and assessments (红黄绿分级与评估)
    "nav.tiers": {"zh-CN": "分级管理", "en": "Tiers"},
    "tier.title": {"zh-CN": "三色分级", "en": "Care tier"},
    "tier.red": {"zh-CN": "红色", "en": "Red"},
    "tier.yellow": {"zh-CN": "黄色", "en": "Yellow"},
    "tier.green": {"zh-CN": "绿色", "en": "Green"},
    "tier.none": {"zh-CN": "尚未分级", "en": "not yet decided"},
    "tier.reasons": {"zh-CN": "分级依据", "en": "Reasons"},
    "tier.green_reason": {"zh-CN": "无红色或黄色情形", "en": "no red or yellow fact"},
    "tier.changed_at": {"zh-CN": "分级变更于", "en": "Tier changed"},
    "tier.decided_at": {"zh-CN": "最近判定于", "en": "last decided"},
    "tier.history": {"zh-CN": "分级历史", "en": "Tier history"},
    "tier.trigger.assessment": {"zh-CN": "评估后", "en": "after an assessment"},
    "tier.trigger.import": {"zh-CN": "数据导入后", "en": "after an import"},
    "tier.trigger.sweep": {"zh-CN": "每日复核", "en": "nightly sweep"},
    "tier.trigger.manual": {"zh-CN": "手动重算", "en": "recomputed by hand"},
    "tier.trigger.merge": {"zh-CN": "档案合并后", "en": "after a merge"},
    "tiers.title": {"zh-CN": "红黄绿分级管理", "en": "Red / yellow / green tiers"},
    "tiers.district": {"zh-CN": "全区", "en": "District"},
    "tiers.by_area": {"zh-CN": "各区域分级人数", "en": "Residents by tier and area"},
    "tiers.area": {"zh-CN": "区域", "en": "Area"},
    "tiers.total": {"zh-CN": "合计", "en": "Total"},
    "tiers.all": {"zh-CN": "全部", "en": "All"},
    "tiers.residents": {"zh-CN": "居民分级名单", "en": "Residents by tier"},
    "tiers.none": {"zh-CN": "暂无分级数据", "en": "No tiers yet"},
    "tiers.no_community": {"zh-CN": "未分配社区", "en": "no community"},
    "plan.title": {"zh-CN": "建议照护计划", "en": "Proposed care plan"},
    "plan.goals": {"zh-CN": "目标", "en": "Goals"},
    "plan.activities": {"zh-CN": "服务项目", "en": "Activities"},
    "plan.performer": {"zh-CN": "服务提供方", "en": "Provided by"},
    "plan.schedule": {"zh-CN": "频次", "en": "Schedule"},
    "plan.status.proposed": {"zh-CN": "待医生确认", "en": "proposed"},
    "plan.status.active": {"zh-CN": "执行中", "en": "active"},
    "plan.status.revoked": {"zh-CN": "已撤销", "en": "revoked"},
    "plan.status.completed": {"zh-CN": "已完成", "en": "completed"},
    "assessment.new": {"zh-CN": "新增评估", "en": "New assessment"},
    "assessment.choose": {"zh-CN": "请选择评估量表", "en": "Choose an instrument"},
    "assessment.about": {"zh-CN": "评估信息", "en": "About this assessment"},
    "assessment.items": {"zh-CN": "评估项目", "en": "Items"},
    "assessment.optional": {"zh-CN": "选填", "en": "optional"},
    "assessment.times": {"zh-CN": "次", "en": "times"},
    "assessment.save": {"zh-CN": "保存评估", "en": "Save assessment"},
    "assessment.errors": {"zh-CN": "请修改以下内容后再保存", "en": "Please correct the following"},
    "assessment.recent": {"zh-CN": "近期评估", "en": "Recent assessments"},
    "assessment.instrument": {"zh-CN": "量表", "en": "Instrument"},
    "assessment.total": {"zh-CN": "得分", "en": "Score"},
    "assessment.level": {"zh-CN": "结果", "en": "Result"},
    "assessment.assessed_at": {"zh-CN": "评估时间", "en": "Assessed at"},
    "assessment.assessor": {"zh-CN": "评估人", "en": "Assessor"},
    "assessment.due": {"zh-CN": "下次评估", "en": "Next due"},
    "choice.illiterate": {"zh-CN": "文盲", "en": "illiterate"},
    "choice.primary": {"zh-CN": "小学", "en": "primary school"},
    "choice.secondary_plus": {"zh-CN": "中学及以上", "en": "secondary school or more"},
    "choice.male": {"zh-CN": "男", "en": "male"},
    "choice.female": {"zh-CN": "女", "en": "female"},
    # access: sign-in, refusals, break-the-glass
    "signin.title": {"zh-CN": "登录", "en": "Sign in"},
    "signin.username": {"zh-CN": "用户名", "en": "User name"},
    "signin.password": {"zh-CN": "密码", "en": "Password"},
    "signin.submit": {"zh-CN": "登录", "en": "Sign in"},
    "signin.signout": {"zh-CN": "退出登录", "en": "Sign out"},
    "error.forbidden": {"zh-CN": "无权访问", "en": "Not allowed"},
    "breakglass.explain": {
        "zh-CN": "紧急情况下可临时打开该居民档案；每次访问都会记录并由卫健、民政工作人员审阅。",
        "en": "In an emergency you may open this resident's record for a limited time; every use is audited and reviewed by officers.",
    },
    "breakglass.reason": {"zh-CN": "理由", "en": "Reason"},
    "breakglass.open": {"zh-CN": "紧急访问", "en": "Break the glass"},
}


def translate(key: str, lang: str = "zh-CN", **values: object) -> str:
    entry = CATALOGUE.get(key)
    if entry is None:
        return key
    text = entry.get(lang) or entry["zh-CN"]
    return text.format(**values) if values else text


def pick_language(query_lang: str | None, cookie_lang: str | None = None) -> str:
    """zh-CN unless the person chose English (``?lang=en``, remembered in a cookie)."""
    for choice in (query_lang, cookie_lang):
        if choice in LANGUAGES:
            return choice  # type: ignore[return-value]
    return "zh-CN"


def translator(lang: str) -> Callable[..., str]:
    return lambda key, **values: translate(key, lang, **values)
