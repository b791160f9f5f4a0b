"""Two example handlers; remove ``example_handlers`` from INSTALLED_APPS to drop them."""

from decimal import Decimal, DivisionByZero, InvalidOperation
from typing import Any

from handlers import ResponseBuilder, WebhookHandler, WebhookRequest, register


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value).strip().replace(",", "."))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


@register
class DivisionHandler(WebhookHandler):
    """The vendor SDK's own example: divides ``dividend`` by ``divisor``."""

    name = "division-handler"
    verbose_name = "Division"

    def handle(self, request: WebhookRequest, response: ResponseBuilder) -> None:
        values = request.form_values
        dividend, divisor = (
            _number(values.get("dividend")),
            _number(values.get("divisor")),
        )
        if dividend is None or divisor is None:
            response.add_text("Please give two numbers: a dividend and a divisor.")
            return
        try:
            result = dividend / divisor
        except (DivisionByZero, InvalidOperation):
            response.add_text("I can't divide by zero. Try another divisor.")
            return
        shown = (
            format(result.normalize(), "f")
            if result == result.to_integral()
            else f"{result:.6g}"
        )
        response.add_text(f"{dividend} divided by {divisor} is {shown}.")
        response.set_variable("result", shown)


@register
class SaveFormHandler(WebhookHandler):
    """Thanks the user; the form is already stored by the core before any handler runs."""

    name = "save-form"
    verbose_name = "Save form"

    def handle(self, request: WebhookRequest, response: ResponseBuilder) -> None:
        response.add_text("Thank you! We have received your answers.")
