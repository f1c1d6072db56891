"""The debrief form: short enough for a phone in two minutes, every field labelled."""

from __future__ import annotations

from datetime import date, timedelta

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    FieldList,
    Form,
    FormField,
    RadioField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Length, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from service.pipeline.debrief import (
    MAX_LESSON,
    MAX_PERSONAL_LINE,
    OUR_SIDE,
    OUTCOME_CHOICES,
    PLANS,
    THEIR_SIDE,
    Answers,
)
from service.web.debrief.labels import (
    OUR_SIDE_LABELS,
    OUTCOME_LABELS,
    PLAN_LABELS,
    THEIR_SIDE_LABELS,
    labelled,
)

# Room for the people the note named plus two more; a longer committee is rare and the page stays short.
EXTRA_PEOPLE = 2
MAX_PEOPLE = 8
# A recontact further out than this is a typo in the year, not a plan.
MAX_YEARS_AHEAD = 3


def _choices(words: dict[str, str], labels: dict) -> list:
    """Choices as WTForms 3.3+ wants them (SelectChoice); plain pairs on older versions. Labels in the page's
    language."""
    words = labelled(words, labels)
    try:
        from wtforms import SelectChoice
    except ImportError:  # WTForms < 3.3
        return list(words.items())
    return [SelectChoice(value, label) for value, label in words.items()]


class CheckboxesField(SelectMultipleField):
    """Several choices as checkboxes (SelectMultipleField's validation, a list of boxes as the widget)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class PersonForm(Form):
    """One decision maker (a plain Form: the page's CSRF token covers it)."""

    name = StringField(_l("Name"), validators=[Optional(), Length(max=120)])
    role = StringField(_l("Role"), validators=[Optional(), Length(max=120)])


class DebriefForm(FlaskForm):
    outcome = RadioField(_l("How did it end?"), choices=_choices(OUTCOME_CHOICES, OUTCOME_LABELS), validators=[InputRequired()])
    ours = CheckboxesField(_l("On our side"), choices=_choices(OUR_SIDE, OUR_SIDE_LABELS), validators=[Optional()])
    theirs = CheckboxesField(_l("On their side"), choices=_choices(THEIR_SIDE, THEIR_SIDE_LABELS), validators=[Optional()])
    decision_makers = FieldList(FormField(PersonForm), min_entries=1, max_entries=MAX_PEOPLE)
    lesson = TextAreaField(_l("What would you do differently next time?"),
                           validators=[Optional(), Length(max=MAX_LESSON)])
    plan = RadioField(_l("What next?"), choices=_choices(PLANS, PLAN_LABELS), validators=[InputRequired()])
    recontact_on = DateField(_l("Date"), validators=[Optional()])
    personal_line = TextAreaField(_l("A personal line in the email (optional)"),
                                  validators=[Optional(), Length(max=MAX_PERSONAL_LINE)])
    preview = SubmitField(_l("Update preview"))
    submit = SubmitField(_l("Save debrief"))

    def __init__(self, *args, today: date, saved_date: date | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.today, self.saved_date = today, saved_date

    def validate(self, extra_validators=None) -> bool:
        """The fields, then the date a dated recontact needs (Optional() ends the field's own chain when empty)."""
        valid = super().validate(extra_validators)
        needs_date = self.plan.data == "recontact_on_date" and self.outcome.data != "won"
        if needs_date and not self.recontact_on.data and not self.recontact_on.errors:
            self.recontact_on.errors = [*self.recontact_on.errors, _("Pick the date for the recontact.")]
            return False
        return valid

    def validate_recontact_on(self, field: DateField) -> None:
        """Today or later (a date saved earlier may stay as it is), and not years away."""
        if field.data and field.data != self.saved_date and field.data < self.today:
            raise ValidationError(_("Pick today or a later date."))
        if field.data and field.data > self.today + timedelta(days=366 * MAX_YEARS_AHEAD):
            raise ValidationError(_("Pick a date within %(years)d years.", years=MAX_YEARS_AHEAD))

    def answers(self) -> Answers:
        """The validated form as Answers."""
        people = [{"name": p.form.name.data, "role": p.form.role.data} for p in self.decision_makers]
        return Answers(outcome=self.outcome.data, ours=tuple(self.ours.data or ()),
                       theirs=tuple(self.theirs.data or ()), decision_makers=tuple(people),
                       lesson=self.lesson.data or "", plan=self.plan.data, recontact_on=self.recontact_on.data,
                       personal_line=self.personal_line.data or "")


def form_data(answers: Answers) -> dict:
    """Answers as the form's initial data, with empty rows to add decision makers."""
    people = list(answers.decision_makers)[:MAX_PEOPLE - EXTRA_PEOPLE]
    people += [{"name": "", "role": ""}] * EXTRA_PEOPLE
    return {"outcome": answers.outcome, "ours": list(answers.ours), "theirs": list(answers.theirs),
            "decision_makers": [{"name": p.get("name") or "", "role": p.get("role") or ""} for p in people],
            "lesson": answers.lesson, "plan": answers.plan, "recontact_on": answers.recontact_on,
            "personal_line": answers.personal_line}
