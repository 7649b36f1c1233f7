"""Speaker forms (Flask-WTF: every form carries a CSRF token)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, EmailField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from conference.core.ids import choice_id


class SpeakerProfileForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    academic_title = StringField(_l("Academic title"), validators=[Length(max=60)])
    position = StringField(_l("Position"), validators=[Length(max=120)])
    organisation = StringField(_l("Organisation"), validators=[Length(max=160)])
    bio = TextAreaField(_l("Short biography (Markdown)"), validators=[Length(max=5000)])
    links = TextAreaField(_l("Links (one http or https address per line)"), validators=[Length(max=5500)])
    photo = FileField(_l("Photo (JPEG, PNG, WebP or GIF, at most 5 MB)"))
    remove_photo = BooleanField(_l("Remove the photo"))


class InvitationForm(FlaskForm):
    session_id = SelectField(_l("Session"), coerce=choice_id, validators=[DataRequired()])
    speaker_id = SelectField(_l("Speaker profile"), coerce=choice_id, validators=[Optional()])
    name = StringField(_l("Name (for a new profile)"), validators=[Length(max=120)])
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    role = SelectField(_l("Role"), choices=[SelectChoice("speaker", _l("Speaker")),
                                                SelectChoice("moderator", _l("Moderator"))])
