"""The admin pages' forms (Flask-WTF: every POST carries a CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired, FileSize
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from service.notes.model import REASONS
from service.outbox.templates import MAX_SOURCE_CHARS
from service.team.admins import MIN_PASSWORD_LENGTH, normalise_email

WEEKDAYS = [SelectChoice(str(number), name) for number, name in enumerate(
    ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"))]


def _plain_address(_form, field) -> None:
    """One plain address (no display name, no list), stored lower-cased."""
    try:
        field.data = normalise_email(field.data)
    except ValueError:
        raise ValidationError("Enter one email address, like name@example.com.") from None


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=200)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=500)])
    submit = SubmitField("Log in")


class InviteForm(FlaskForm):
    email = EmailField("Email of the new admin", validators=[DataRequired(), _plain_address, Length(max=200)])
    submit = SubmitField("Make an invitation link")


class NewPasswordForm(FlaskForm):
    """The page an invitation or a reset link opens: the password twice."""

    password = PasswordField("New password", validators=[
        DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=500,
                               message=f"Use at least {MIN_PASSWORD_LENGTH} characters.")],
        render_kw={"autocomplete": "new-password"})
    confirm = PasswordField("The same password again", validators=[
        DataRequired(), EqualTo("password", message="The two passwords are not the same.")],
        render_kw={"autocomplete": "new-password"})
    submit = SubmitField("Set the password")


class ActionForm(FlaskForm):
    """A button that POSTs: logout, cancel, send now, reprocess, revert, disable… (CSRF only)."""

    submit = SubmitField("Go")


class TemplateForm(FlaskForm):
    subject = StringField("Subject", validators=[Length(max=MAX_SOURCE_CHARS["subject"])])
    text = TextAreaField("Text part", validators=[DataRequired(), Length(max=MAX_SOURCE_CHARS["text"])])
    html = TextAreaField("HTML part", validators=[Length(max=MAX_SOURCE_CHARS["html"])])
    sample = SelectField("Preview with", validate_choice=False)
    submit = SubmitField("Save as a new version")


class _MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class PolicyForm(FlaskForm):
    """Strings on purpose: planning.Policy does the validating, so the page and the JSON agree on the rules."""

    thank_you_time = StringField("Thank-you time", render_kw={"type": "time"})
    recontact_time = StringField("Recontact time", render_kw={"type": "time"})
    send_window_start = StringField("Send window opens", render_kw={"type": "time"})
    send_window_end = StringField("Send window closes", render_kw={"type": "time"})
    min_hours_after_meeting = StringField("Minimum hours after the meeting",
                                          render_kw={"inputmode": "decimal"})
    business_days = _MultiCheckboxField("Business days", choices=WEEKDAYS, coerce=int)
    holiday_country = StringField("Public holidays of (country code)", render_kw={"placeholder": "IT, GB, US-CA…"})
    extra_holidays = TextAreaField("Company closures (one date per line, YYYY-MM-DD)", render_kw={"rows": 3})
    default_recontact_days = StringField("Default recontact delay (days)", render_kw={"inputmode": "numeric"})
    debrief_reminder_business_days = StringField("Debrief reminder after (business days)",
                                                 render_kw={"inputmode": "numeric"})
    confirmation = SelectField("Customer emails wait for the rep's confirmation", choices=[
        ("unsure", "when Keepwarm is unsure of what it read (recommended)"),
        ("always", "always: the rep confirms every meeting"),
        ("auto", "never: send automatically")], validate_choice=False)  # planning.Policy judges, as for the rest
    submit = SubmitField("Save the policy")


for _reason in REASONS:
    setattr(PolicyForm, f"delay_{_reason}", StringField(f"Recontact delay for “{_reason.replace('_', ' ')}” (days)",
                                                        render_kw={"inputmode": "numeric"}))


class RepForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), _plain_address, Length(max=200)])
    name = StringField("Name (shown to customers)", validators=[DataRequired(), Length(max=120)])
    timezone = StringField("Time zone", validators=[DataRequired(), Length(max=64)],
                           render_kw={"list": "timezones", "placeholder": "Europe/Rome"})
    aliases = TextAreaField("Alternative addresses (one per line)", validators=[Optional(), Length(max=2000)],
                            render_kw={"rows": 2})
    language = SelectField("Language of Keepwarm's mail to the rep", choices=[
        SelectChoice("", "the language of each note"), SelectChoice("en", "English"),
        SelectChoice("it", "Italiano")], default="")
    active = BooleanField("Active (may trigger follow-ups)", default=True)
    submit = SubmitField("Save the rep")


class AliasForm(FlaskForm):
    alias = HiddenField("Address", validators=[DataRequired(), Length(max=200)])
    submit = SubmitField("Remove")


class SuppressionForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), _plain_address, Length(max=200)])
    reason = StringField("Reason", validators=[DataRequired(), Length(max=200)],
                         default="asked not to be contacted")
    submit = SubmitField("Add to the list")


# A CSV of reps travels back in the confirm step's form as one field: Werkzeug keeps a form field in memory up to
# 500 kB, so the file stays well below (about 2,500 reps); `keepwarm reps import` takes any size.
MAX_REPS_CSV_BYTES = 256 * 1024


class RepImportForm(FlaskForm):
    file = FileField("CSV file", validators=[
        FileRequired("Choose a CSV file."),
        FileSize(max_size=MAX_REPS_CSV_BYTES,
                 message=f"The file is larger than {MAX_REPS_CSV_BYTES // 1024} kB: split it, or use the CLI.")],
        render_kw={"accept": ".csv,text/csv"})
    submit = SubmitField("Preview the import")


class RepImportConfirmForm(FlaskForm):
    """The checked file again (the import checks it anew against the database before writing)."""

    csv_text = HiddenField(validators=[DataRequired(), Length(max=MAX_REPS_CSV_BYTES)])
    submit = SubmitField("Import the good rows")


class WebhookForm(FlaskForm):
    """A new webhook endpoint: where, what for, and which events (service.webhooks.endpoints checks the URL)."""

    url = StringField("Receiver URL", validators=[DataRequired(), Length(max=2000)],
                      render_kw={"placeholder": "https://crm.example.com/hooks/keepwarm", "inputmode": "url"})
    description = StringField("Description", validators=[Optional(), Length(max=200)])
    events = _MultiCheckboxField("Events", validators=[DataRequired(message="Choose at least one event.")])
    submit = SubmitField("Add the endpoint")

