"""People forms: the registration questions (organisers) and the answers (attendees)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.validators import Length, Optional


class QuestionSettingsForm(FlaskForm):
    asks_organisation = BooleanField(_l("Ask for the organisation"))
    asks_sector = BooleanField(_l("Ask for the sector"))
    sectors = TextAreaField(_l("Sectors (one per line)"), validators=[Length(max=3000)])
    asks_listing_consent = BooleanField(_l("Ask for consent to appear in the public participants list"))
    has_public_list = BooleanField(_l("Show the public participants list (only people who consented)"))


class AnswersForm(FlaskForm):
    code = StringField(_l("Registration code"), validators=[Optional(), Length(max=64)])
    organisation = StringField(_l("Organisation"), validators=[Optional(), Length(max=200)])
    sector = SelectField(_l("Sector"), choices=[], validate_choice=False)
    is_listed = BooleanField(_l("Show my name and organisation in the public participants list"))
