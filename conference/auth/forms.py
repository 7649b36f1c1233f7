"""Account forms (Flask-WTF: every form carries a CSRF token)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, Field, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length, ValidationError


class RegistrationForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)])
    privacy_consent = BooleanField(_l("I have read the privacy notice and agree to it."))
    next = HiddenField()

    def validate_privacy_consent(self, field: Field) -> None:
        """Required while the deployment has a privacy notice; checked before the account is made (see
        `conference.legal.services.record_registration_consent`)."""
        from conference.legal.services import consent_required_at_registration

        if not field.data and consent_required_at_registration():
            raise ValidationError(_l("Please read the privacy notice and agree to it."))


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)])
    next = HiddenField()


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=1024)])
    new_password = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=1024)])


class ConfirmAddressForm(FlaskForm):
    # Not needed when the browser is logged in as the account the link belongs to.
    password = PasswordField(_l("Password"), validators=[Length(max=1024)])


class NewPasswordForm(FlaskForm):
    new_password = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=1024)])


class TokenForm(FlaskForm):
    name = StringField(_l("Token name"), validators=[Length(max=80)])


class EmptyForm(FlaskForm):
    """Buttons that change state (logout, revoke) are forms too, for the CSRF token."""


class ForgotPasswordForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])


# Field names differ from the other forms of the account page: ids must be unique on the page.
class NameForm(FlaskForm):
    account_name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])


class AddressChangeForm(FlaskForm):
    new_email = EmailField(_l("New e-mail address"), validators=[DataRequired(), Length(max=254)])
    address_password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)])


class DeleteAccountForm(FlaskForm):
    delete_password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)])
