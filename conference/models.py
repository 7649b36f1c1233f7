"""Imports every domain's models so that Alembic autogenerate and `create_all` see all tables."""

from conference.agenda import models as agenda_models  # noqa: F401
from conference.attendance import models as attendance_models  # noqa: F401
from conference.auth import models as auth_models  # noqa: F401
from conference.core import jobs as jobs_models  # noqa: F401
from conference.core import mail as mail_models  # noqa: F401
from conference.events import models as events_models  # noqa: F401
from conference.feedback import models as feedback_models  # noqa: F401
from conference.legal import models as legal_models  # noqa: F401
from conference.live import models as live_models  # noqa: F401
from conference.mails import models as mails_models  # noqa: F401
from conference.people import models as people_models  # noqa: F401
from conference.presentations import models as presentations_models  # noqa: F401
from conference.speakers import models as speakers_models  # noqa: F401
