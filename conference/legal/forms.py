"""Forms for the legal pages and the consent page (Flask-WTF: every form carries a CSRF token)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, TextAreaField
from wtforms.validators import DataRequired, Length
from wtforms.widgets import HiddenInput

from conference.legal.services import MAX_TEXT_CHARS

# The form holds two texts; URL-encoding makes German text about a third longer. Beyond this: 413.
LEGAL_FORM_MAX_BYTES = 2 * MAX_TEXT_CHARS * 3 + 16 * 1024


_TOO_LONG = _l("The text may have at most %(max)d characters.")


class LegalTextsForm(FlaskForm):
    impressum = TextAreaField(_l("Legal notice (Impressum)"),
                              validators=[Length(max=MAX_TEXT_CHARS, message=_TOO_LONG)])
    privacy = TextAreaField(_l("Privacy notice (Datenschutzerklärung)"),
                            validators=[Length(max=MAX_TEXT_CHARS, message=_TOO_LONG)])


class ConsentForm(FlaskForm):
    # The version the page showed: accepting counts only for that one.
    notice_id = IntegerField(validators=[DataRequired()], widget=HiddenInput())
    next = HiddenField()
