"""Consent rows as FHIR R4 Consent resources, and back (validated with fhir.resources R4B).

One row is one Consent: ``provision.type`` permit/deny, ``provision.period`` the validity,
``provision.actor`` (role IRCP, information recipient) the recipient class, ``provision.purpose``
the purpose, ``provision.code`` the data category; ``status`` active while in force, inactive
once revoked, superseded or expired, proposed before it starts. ``policyRule`` is OPTIN for a
permit and OPTOUT for a deny (v3-ActCode), so ppc-1 (a policy or a policy rule) holds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.consent import Consent as FhirConsent
from pydantic import ValidationError

from yiyang.access.consent import consent_status
from yiyang.access.consent_models import Consent, ConsentDecision
from yiyang.access.policy import DataCategory, Purpose, RecipientClass
from yiyang.deps import id_from_text, moment_in_range
from yiyang.errors import Invalid

YIYANG_BASE = "https://yiyang.example.org/fhir"
CATEGORY_SYSTEM = f"{YIYANG_BASE}/CodeSystem/consent-data-category"
RECIPIENT_SYSTEM = f"{YIYANG_BASE}/CodeSystem/consent-recipient-class"
PURPOSE_SYSTEM = f"{YIYANG_BASE}/CodeSystem/consent-purpose"
SCOPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentscope"
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PARTICIPATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
RECIPIENT_LABELS = {
    RecipientClass.health: "卫健机构 (health organisations)",
    RecipientClass.civil_affairs: "民政机构 (civil-affairs organisations)",
    RecipientClass.social: "志愿者与社会组织 (volunteers and social organisations)",
}


def _instant(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def consent_resource(consent: Consent, now: dt.datetime) -> dict[str, Any]:
    period: dict[str, str] = {"start": _instant(consent.valid_from)}
    end = min((t for t in (consent.valid_until, consent.revoked_at) if t is not None), default=None)
    if end is not None:
        period["end"] = _instant(max(end, consent.valid_from))
    recipient = RecipientClass(consent.recipient_class)
    permit = consent.decision == ConsentDecision.permit
    resource = {
        "resourceType": "Consent",
        "id": str(consent.id),
        "status": consent_status(consent, now),
        "scope": {"coding": [{"system": SCOPE_SYSTEM, "code": "patient-privacy"}]},
        "category": [
            {"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]}
        ],
        "patient": {"reference": f"Patient/{consent.resident_id}"},
        "dateTime": _instant(consent.created_at),
        "policyRule": {"coding": [{"system": ACT_CODE_SYSTEM, "code": "OPTIN" if permit else "OPTOUT"}]},
        "provision": {
            "type": "permit" if permit else "deny",
            "period": period,
            "actor": [
                {
                    "role": {"coding": [{"system": PARTICIPATION_SYSTEM, "code": "IRCP"}]},
                    "reference": {
                        "identifier": {"system": RECIPIENT_SYSTEM, "value": recipient.value},
                        "display": RECIPIENT_LABELS.get(recipient, recipient.value),
                    },
                }
            ],
            "purpose": [{"system": PURPOSE_SYSTEM, "code": consent.purpose}],
            "code": [{"coding": [{"system": CATEGORY_SYSTEM, "code": consent.category}]}],
        },
    }
    FhirConsent.model_validate(resource)  # what we serve is valid R4(B)
    return resource


@dataclass(frozen=True, slots=True)
class ConsentInput:
    """A Consent read from FHIR, as the values ``consent.record_consent`` takes."""

    resident_id: int
    category: DataCategory
    recipient_class: RecipientClass
    purpose: Purpose
    decision: ConsentDecision
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None
    active: bool  # False: the resource says inactive/rejected (a withdrawal)


def _bad(message: str) -> Invalid:
    return Invalid("fhir.consent.invalid", f"Consent 无效 (invalid Consent: {message})")


def _period_bound(value: Any, where: str) -> dt.datetime | None:
    """A period's start or end as an aware moment, a full date being 00:00 UTC that day. A partial
    date ("2026", "2026-11", which the model keeps as text) is refused, as is a time with no UTC
    moment or outside 1900 to 2100 (``deps.moment_in_range``)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    else:
        raise _bad(f"{where} must be a full date or date-time")
    if moment_in_range(moment) is None:
        raise _bad(f"{where} must be from 1900 to 2100")
    return moment


def _code(codings: Any, system: str) -> str | None:
    for coding in codings or ():
        if coding.system == system and coding.code:
            return coding.code
    return None


def consent_from_resource(raw: Any) -> ConsentInput:
    """Read one of our Consents (the systems above); refuse anything we cannot honour exactly."""
    if not isinstance(raw, dict) or raw.get("resourceType") != "Consent":
        raise _bad("not a Consent resource")
    try:
        resource = FhirConsent.model_validate(raw)
    except (ValueError, TypeError) as error:  # pydantic's ValidationError is a ValueError
        if not isinstance(error, ValidationError):
            raise _bad("does not validate") from None
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise _bad(f"{where}: {first.get('msg', 'does not validate')}"[:160]) from None
    reference = (resource.patient.reference or "") if resource.patient else ""
    kind, _, number = reference.partition("/")
    resident_id = id_from_text(number) if kind == "Patient" else None
    if resident_id is None:
        raise _bad("patient must reference Patient/<id> of this server")
    provision = resource.provision
    if provision is None or provision.type not in ("permit", "deny"):
        raise _bad("provision.type must be permit or deny")
    categories = [_code(c.coding, CATEGORY_SYSTEM) for c in provision.code or ()]
    recipients = [
        a.reference.identifier.value
        for a in provision.actor or ()
        if a.reference and a.reference.identifier and a.reference.identifier.system == RECIPIENT_SYSTEM
    ]
    purposes = [p.code for p in provision.purpose or () if p.system == PURPOSE_SYSTEM]
    if len(categories) != 1 or len(recipients) != 1 or len(purposes) > 1:
        raise _bad("one data category, one recipient class and at most one purpose, in yiyang's code systems")
    try:
        category = DataCategory(categories[0] or "")
        recipient = RecipientClass(recipients[0] or "")
        purpose = Purpose(purposes[0]) if purposes else Purpose.care
    except ValueError:
        raise _bad("unknown data category, recipient class or purpose code") from None
    if recipient is RecipientClass.own:
        raise _bad("the resident's own access needs no consent")
    period = provision.period
    return ConsentInput(
        resident_id=resident_id, category=category, recipient_class=recipient, purpose=purpose,
        decision=ConsentDecision(provision.type),
        valid_from=_period_bound(period.start, "provision.period.start") if period else None,
        valid_until=_period_bound(period.end, "provision.period.end") if period else None,
        active=resource.status not in ("inactive", "rejected", "entered-in-error"),
    )  # fmt: skip
