"""Event forms."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, DateField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from conference.core.permissions import Role


class EventRegistrationForm(FlaskForm):
    code = StringField(_l("Registration code"), validators=[Optional(), Length(max=64)])


class EventSettingsForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=200)])
    description = TextAreaField(_l("Description"), validators=[Length(max=10_000)])
    start_date = DateField(_l("First day"), validators=[DataRequired()])
    end_date = DateField(_l("Last day"), validators=[DataRequired()])
    timezone = StringField(_l("Time zone"), validators=[DataRequired(), Length(max=64)])
    language = SelectField(_l("Language"), choices=[SelectChoice("de", "Deutsch"), SelectChoice("en", "English")])
    registration_mode = SelectField(_l("Registration"), choices=[
        SelectChoice("open", _l("Open to everyone with an account")),
        SelectChoice("code", _l("Only with the registration code")),
        SelectChoice("closed", _l("Closed")),
    ])
    registration_code = StringField(_l("Registration code"), validators=[Optional(), Length(max=64)])
    link_visibility = SelectField(_l("Stream and meeting links"), choices=[
        SelectChoice("auto", _l("Members only when registration needs a code or is closed (default)")),
        SelectChoice("members", _l("Members only: people registered for the event")),
        SelectChoice("public", _l("Public: everyone who can see the session page")),
    ])
    is_published = BooleanField(_l("Published"))
    keeps_slides_as_record = BooleanField(_l("Published slides are the event's record"))


class RoleForm(FlaskForm):
    email = StringField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    role = SelectField(_l("Role"), choices=[
        SelectChoice(Role.ATTENDEE.value, _l("Attendee")),
        SelectChoice(Role.SPEAKER.value, _l("Speaker")),
        SelectChoice(Role.MODERATOR.value, _l("Moderator")),
        SelectChoice(Role.ORGANISER.value, _l("Organiser")),
    ])


class BrandingForm(FlaskForm):
    accent_color = StringField(_l("Accent colour (#rrggbb)"), validators=[Optional(), Length(max=7)])
    logo = FileField(_l("Logo (PNG, JPEG, WebP or GIF, at most 2 MB)"))
    remove_logo = BooleanField(_l("Remove the logo"))
    header_image = FileField(_l("Header image (PNG, JPEG, WebP or GIF, at most 5 MB)"))
    remove_header_image = BooleanField(_l("Remove the header image"))
    imprint_url = StringField(_l("Imprint (https://...)"), validators=[Optional(), Length(max=500)])
    privacy_url = StringField(_l("Privacy policy (https://...)"), validators=[Optional(), Length(max=500)])
    contact_url = StringField(_l("Contact (https://... or mailto:...)"), validators=[Optional(), Length(max=500)])
