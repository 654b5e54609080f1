"""Say what a destructive action will do and wait for a deliberate yes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Footer, Static

CSS_FILE = "../registry.tcss"


@dataclass(frozen=True)
class Confirmed:
    """The user said yes; `option` is the state of the optional checkbox."""

    option: bool = False


class ConfirmModal(ModalScreen[Confirmed | None]):
    """`y` confirms, `n` or Escape cancels (so does the focused Cancel button's Enter)."""

    CSS_PATH = CSS_FILE
    BINDINGS = [
        Binding("y", "confirm", "Yes", id="confirm.yes"),
        Binding("n,escape", "cancel", "No", id="confirm.no"),
    ]

    def __init__(
        self,
        question: str,
        details: Sequence[str] = (),
        *,
        confirm_label: str = "Delete",
        option: str | None = None,
    ) -> None:
        super().__init__()
        self.question = question
        self.details = list(details)
        self.confirm_label = confirm_label
        self.option = option

    def compose(self) -> ComposeResult:
        with Vertical(classes="form-box confirm-box"):
            yield Static(self.question, classes="form-title", markup=False)
            for line in self.details:
                yield Static(line, classes="confirm-detail", markup=False)
            if self.option:
                yield Checkbox(self.option, id="confirm-option")
            with Horizontal(classes="form-buttons"):
                yield Button(f"{self.confirm_label} (y)", variant="error", id="confirm-yes")
                yield Button("Cancel (n)", id="confirm-no")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#confirm-no", Button).focus()

    def action_confirm(self) -> None:
        option = self.query("#confirm-option").first(Checkbox).value if self.option else False
        self.dismiss(Confirmed(option))

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "confirm-yes":
            self.action_confirm()
        else:
            self.action_cancel()
