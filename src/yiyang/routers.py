"""Every domain's router, in one list the app includes. Add a domain's router here."""

from __future__ import annotations

from fastapi import APIRouter

from yiyang.access.api import router as access_router
from yiyang.fhir.api import router as fhir_router
from yiyang.geo.api import router as geo_router
from yiyang.residents.api import router as residents_router
from yiyang.sources.api import router as sources_router

ROUTERS: list[APIRouter] = [residents_router, sources_router, geo_router]
ROUTERS.append(fhir_router)
ROUTERS.append(access_router)
from yiyang.devices.api import router as devices_router  # noqa: E402

ROUTERS.append(devices_router)
from yiyang.assessments.api import router as assessments_router  # noqa: E402
from yiyang.tiers.api import router as tiers_router  # noqa: E402

ROUTERS.extend([assessments_router, tiers_router])
from yiyang.web.tier_pages import router as tier_pages_router  # noqa: E402

ROUTERS.append(tier_pages_router)
from yiyang.access.consent_api import router as consent_router  # noqa: E402
from yiyang.web.sign_in import router as sign_in_router  # noqa: E402

ROUTERS.extend([consent_router, sign_in_router])
from yiyang.care.api import router as care_router  # noqa: E402
from yiyang.web.care_pages import router as care_pages_router  # noqa: E402

ROUTERS.extend([care_router, care_pages_router])
from yiyang.care.orders.api import router as orders_router  # noqa: E402
from yiyang.timebank.api import router as timebank_router  # noqa: E402
from yiyang.web.order_pages import router as order_pages_router  # noqa: E402

ROUTERS.extend([orders_router, timebank_router, order_pages_router])
from yiyang.access.accounts_api import router as accounts_router  # noqa: E402
from yiyang.access.audit_api import router as audit_router  # noqa: E402
from yiyang.access.authorisations_api import router as authorisations_router  # noqa: E402
from yiyang.web.access_pages import router as access_pages_router  # noqa: E402
from yiyang.web.account_pages import router as account_pages_router  # noqa: E402
from yiyang.web.authorisation_pages import router as authorisation_pages_router  # noqa: E402

ROUTERS.extend(
    [
        audit_router,
        accounts_router,
        authorisations_router,
        access_pages_router,
        account_pages_router,
        authorisation_pages_router,
    ]
)
from yiyang.alerts.api import router as alerts_router  # noqa: E402
from yiyang.web.alert_pages import router as alert_pages_router  # noqa: E402

ROUTERS.extend([alerts_router, alert_pages_router])
