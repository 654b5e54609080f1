"""The modal form every registry edit goes through.

Enter (in any text field) or Ctrl+S submits, Escape cancels. A field that is wrong turns red
with one line saying why under it; a failure that belongs to no field shows above the buttons.
The fields scroll under that line and the buttons, which stay in view however small the
terminal. `submit()` runs as a worker, so a slow check (a provider file validated in a child
process) leaves the console responsive, and it writes nothing unless every check passed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Generic, TypeVar, cast

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Footer, Input, Label, Static
from textual.worker import Worker, WorkerState

from quasar_tui.core.messages import one_line
from quasar_tui.tui.services.reads import READ_ERRORS

if TYPE_CHECKING:
    from quasar_tui.tui.app import QuasarApp
    from quasar_tui.tui.services import Services

T = TypeVar("T")
CSS_FILE = "../registry.tcss"


class Field(Horizontal):
    """A label beside its control, with an optional help line and the field's one-line error
    under the control."""

    def __init__(
        self, label: str, control: Widget, hint: str = "", *, id: str | None = None
    ) -> None:
        super().__init__(id=id, classes="field")
        self.label = label
        self.control = control
        self.hint = hint

    def compose(self) -> ComposeResult:
        yield Label(self.label, classes="field-label", markup=False)
        with Vertical(classes="field-body"):
            yield self.control
            if self.hint:
                yield Static(self.hint, classes="field-help", markup=False)
            yield Static("", classes="field-error", markup=False)

    def fail(self, reason: str) -> None:
        self.control.add_class("-invalid")
        self.add_class("-failed")
        self.query_one(".field-error", Static).update(reason)

    def clear(self) -> None:
        self.control.remove_class("-invalid")
        self.remove_class("-failed")
        self.query_one(".field-error", Static).update("")


class FormModal(ModalScreen[T], Generic[T]):
    """Subclasses give `SUBMIT_LABEL`, `compose_fields()`, `submit()` and a title
    (`FORM_TITLE`, or `form_title` set in `__init__`)."""

    CSS_PATH = CSS_FILE
    FORM_TITLE = "Form"
    SUBMIT_LABEL = "Save"
    BUSY_TEXT = "Saving..."
    BINDINGS = [
        Binding(
            "ctrl+s",
            "submit",
            "Submit",
            tooltip="Check and save the form (Enter in a text field does the same)",
            id="form.submit",
        ),
        Binding(
            "escape",
            "cancel",
            "Cancel",
            tooltip="Close the form; nothing is saved",
            id="form.cancel",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.busy = False
        self.form_title = self.FORM_TITLE
        self.submit_label = self.SUBMIT_LABEL

    @property
    def services(self) -> Services:
        return cast("QuasarApp", self.app).services

    def compose(self) -> ComposeResult:
        with Vertical(classes="form-box"):
            yield Static(self.form_title, classes="form-title", markup=False)
            yield from self.compose_fields()
            with Vertical(classes="form-footer"):
                yield Static("", id="form-error", markup=False)
                with Horizontal(classes="form-buttons"):
                    yield Button(self.submit_label, variant="primary", id="form-submit")
                    yield Button("Cancel", id="form-cancel")
        yield Footer(compact=True)

    def compose_fields(self) -> Iterator[Widget]:
        yield from ()

    async def submit(self) -> None:
        """Check every field (`fail` the wrong ones and return while `has_errors`), then
        write and dismiss."""

    # -- plumbing -------------------------------------------------------------------------

    def field(self, field_id: str) -> Field:
        return self.query_one(f"#{field_id}", Field)

    def fail(self, field_id: str, reason: str) -> None:
        self.field(field_id).fail(reason)

    def fail_form(self, reason: str) -> None:
        error = self.query_one("#form-error", Static)
        error.update(reason)
        error.add_class("-shown")

    def clear_errors(self) -> None:
        for field in self.query(Field):
            field.clear()
        error = self.query_one("#form-error", Static)
        error.update("")
        error.remove_class("-shown")

    def set_submit_label(self, label: str) -> None:
        self.submit_label = label
        self.query_one("#form-submit", Button).label = label

    @property
    def has_errors(self) -> bool:
        return bool(self.query(".field.-failed"))

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_submit(self) -> None:
        if self.busy:
            return
        self.busy = True
        self.clear_errors()
        self.query_one("#form-submit", Button).label = self.BUSY_TEXT
        self._run_submit()

    @work(name="form", group="form", exclusive=True, exit_on_error=False)
    async def _run_submit(self) -> None:
        try:
            await self.submit()
        except READ_ERRORS as exc:
            self.fail_form(str(exc))
        finally:
            self.busy = False
            if self.is_attached:
                self.query_one("#form-submit", Button).label = self.submit_label

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Whatever `submit()` did not expect still ends as a line in the form, not a crash."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.fail_form(one_line(event.worker.error))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def on_input_changed(self, event: Input.Changed) -> None:
        """Typing into a red field clears its complaint."""
        for field in event.input.ancestors:
            if isinstance(field, Field):
                field.clear()
                break

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "form-submit":
            self.action_submit()
        else:
            self.action_cancel()
