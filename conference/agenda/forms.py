"""Forms of the organiser's agenda editor (server-side rules live in `services`, `rooms` and `releases`)."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import FieldList, Form, FormField, IntegerField, SelectField, StringField, TextAreaField, TimeField
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp
from wtforms.widgets import TextInput

from conference.agenda.models import SessionKind, SpeakerRole, StreamKind
from conference.core.rendering import format_day

try:  # WTForms 3.3 deprecates (value, label) tuples in favour of SelectChoice
    from wtforms.fields.choices import SelectChoice
except ImportError:  # pragma: no cover - older WTForms
    SelectChoice = None


def choices(pairs: Any) -> list[Any]:
    """Select options from (value, label) pairs, in the form the installed WTForms prefers."""
    if SelectChoice is None:
        return [(str(value), label) for value, label in pairs]
    return [SelectChoice(str(value), label) for value, label in pairs]


KIND_LABELS = {
    SessionKind.KEYNOTE: _l("Keynote"), SessionKind.TALK: _l("Talk"), SessionKind.PANEL: _l("Panel"),
    SessionKind.WORKSHOP: _l("Workshop"), SessionKind.BREAK: _l("Break"), SessionKind.NETWORKING: _l("Networking"),
}
LANGUAGE_LABELS = {"de": "Deutsch", "en": "English"}
STREAM_LABELS = {
    StreamKind.HLS: _l("HLS stream"), StreamKind.YOUTUBE: "YouTube", StreamKind.VIMEO: "Vimeo",
    StreamKind.PEERTUBE: "PeerTube", StreamKind.IFRAME: _l("Other player (iframe)"),
    StreamKind.JITSI: _l("Jitsi meeting (link)"), StreamKind.BIGBLUEBUTTON: _l("BigBlueButton room (link)"),
}
SPEAKER_ROWS = 8


class SpeakerEntryForm(Form):
    """One row of the ordered speaker list (a sub-form: the outer form carries the CSRF token)."""

    # Rows left empty are skipped; the service checks every person and role that is given.
    speaker = SelectField(_l("Person"), coerce=str, validators=[Optional()], validate_choice=False)
    role = SelectField(_l("Role"), validate_choice=False, choices=choices([(SpeakerRole.SPEAKER.value, _l("Speaker")),
                                                    (SpeakerRole.MODERATOR.value, _l("Moderator"))]))


class SessionForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=200)])
    abstract = TextAreaField(_l("Abstract (Markdown)"), validators=[Length(max=20_000)])
    kind = SelectField(_l("Kind"), choices=choices(KIND_LABELS.items()))
    language = SelectField(_l("Language"), choices=choices(LANGUAGE_LABELS.items()))
    track_id = SelectField(_l("Track"), coerce=str, validators=[Optional()])
    recording_url = StringField(_l("Recording (https://..., shown after the session)"),
                                validators=[Optional(), Length(max=500)])
    speakers = FieldList(FormField(SpeakerEntryForm), min_entries=SPEAKER_ROWS, max_entries=SPEAKER_ROWS)

    def set_choices(self, tracks: list[Any], profiles: list[Any]) -> None:
        self.track_id.choices = choices([("", _l("(no track)"))] + [(t.id, t.name) for t in tracks])
        people = choices([("", _l("(nobody)"))] + [(p.id, p.display_name) for p in profiles])
        for entry in self.speakers:
            entry.form.speaker.choices = people


#: Times typed as 24-hour "HH:MM" text: a browser's own time field follows the browser's language (09:00 AM in an
#: American Chrome), while every page shows one clock per language: 24-hour in German and English.
CLOCK_24 = {"inputmode": "numeric", "pattern": "([01]?[0-9]|2[0-3]):[0-5][0-9]", "placeholder": "09:00",
            "maxlength": "5", "size": "5"}


class SlotForm(FlaskForm):
    room_id = SelectField(_l("Room"), coerce=str, validators=[DataRequired()])
    day = SelectField(_l("Day"), coerce=str, validators=[DataRequired()])
    start = TimeField(_l("Start"), validators=[DataRequired()], widget=TextInput(), render_kw=CLOCK_24)
    end = TimeField(_l("End"), validators=[DataRequired()], widget=TextInput(), render_kw=CLOCK_24)

    def set_choices(self, rooms: list[Any], days: list[Any]) -> None:
        self.room_id.choices = choices([(r.id, r.name) for r in rooms])
        self.day.choices = choices([(d.isoformat(), format_day(d)) for d in days])


class RoomForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    position = IntegerField(_l("Position"), validators=[Optional(), NumberRange(min=0, max=1000)])
    stream_kind = SelectField(_l("Stream"), choices=choices([("", _l("(none)")), *STREAM_LABELS.items()]))
    stream_url = StringField(_l("Stream address (https://...)"), validators=[Optional(), Length(max=500)])


class TrackForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    color = StringField(_l("Colour"), default="#3b6ea5",
                        validators=[DataRequired(), Regexp(r"^#[0-9a-fA-F]{6}$", message=_l("Use #rrggbb."))])


class ReleaseForm(FlaskForm):
    name = StringField(_l("Version name"), validators=[DataRequired(), Length(max=60)])


class ActionForm(FlaskForm):
    """A button-only form (cancel, delete, star...): just the CSRF token."""
