"""The studio's shared error decorator: a failed request becomes a message in the handler's message output."""

from __future__ import annotations

import pytest

pytest.importorskip("gradio", reason="gradio is not installed (pip install gradio)")

from glassformer.studio.common import ERROR, UserInputError, shows_errors  # noqa: E402


def test_a_failed_request_puts_its_message_in_the_marked_output_and_blanks_the_others():
    @shows_errors(None, ERROR, "", {"__type__": "update"})
    def handler(text: str) -> tuple:
        if not text:
            raise UserInputError("The text is empty: type a sentence first.")
        raise KeyError("boom")

    label, message, view, update = handler("")
    assert (label, view, update) == (None, "", {"__type__": "update"})
    assert "gf-warning" in message and "The text is empty: type a sentence first." in message
    assert "Traceback" not in message
    _, message, _, again = handler("x")
    assert "gf-error" in message and "Something went wrong: KeyError" in message
    assert again is not update  # each failure gets its own copy of a blank Gradio might change


def test_a_single_output_handler_returns_the_message_and_a_working_one_its_answer():
    @shows_errors()
    def handler(value: int) -> str:
        return f"<p>{10 // value}</p>"

    assert handler(5) == "<p>2</p>"
    assert "ZeroDivisionError" in handler(0)
    assert handler.__name__ == "handler"  # Gradio reads the handler's own name and signature


def test_the_message_needs_exactly_one_place():
    with pytest.raises(ValueError, match="exactly one place"):
        shows_errors("", "")
