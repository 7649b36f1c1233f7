"""Feedback and documentation forms."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, RadioField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional


class FeedbackForm(FlaskForm):
    rating = RadioField(_l("Your rating (1 = poor, 5 = excellent)"),
                        choices=[SelectChoice(str(n), str(n)) for n in range(1, 6)], validate_choice=False)
    comment = TextAreaField(_l("Comment (optional, at most 1000 characters)"), validators=[Length(max=1000)])
    shows_name = BooleanField(_l("Show my name to the organisers (speakers never see names)"))


class DocumentationForm(FlaskForm):
    is_published = BooleanField(_l("Publish the documentation page"))
    survey_url = StringField(_l("Survey link (https://...)"), validators=[Optional(), Length(max=500)])
    shows_registered = BooleanField(_l("Show the number of registered participants"))
    shows_attended = BooleanField(_l("Show the number of participants who attended"))
    shows_sessions = BooleanField(_l("Show the number of sessions"))
    shows_questions = BooleanField(_l("Show the number of questions asked"))
    shows_slides = BooleanField(_l("Show the number of published slide decks"))


class SummaryForm(FlaskForm):
    text = TextAreaField(_l("Summary (Markdown)"), validators=[Length(max=5000)])
