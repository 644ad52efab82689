"""Imports every domain's tables so the metadata (and Alembic) sees them all."""

from yiyang import cache_version  # noqa: F401
from yiyang.access import consent_models  # noqa: F401
from yiyang.access import models as access_models  # noqa: F401
from yiyang.alerts import models as alert_models  # noqa: F401
from yiyang.assessments import models as assessment_models  # noqa: F401
from yiyang.care import models as care_models  # noqa: F401
from yiyang.care.orders import models as order_models  # noqa: F401
from yiyang.db import Base
from yiyang.devices import models as device_models  # noqa: F401
from yiyang.geo import models as geo_models  # noqa: F401
from yiyang.residents import models as resident_models  # noqa: F401
from yiyang.sources import models as source_models  # noqa: F401
from yiyang.tiers import models as tier_models  # noqa: F401
from yiyang.timebank import models as timebank_models  # noqa: F401

metadata = Base.metadata
