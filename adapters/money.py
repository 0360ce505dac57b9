"""Exact money: integer minor units, ISO 4217 exponents, and the providers' own units.

Never a float. Amounts travel as integers of the currency's minor unit; conversions to a
provider's unit go through Decimal and refuse, rather than round, what would lose precision.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

# ISO 4217 minor-unit exponents of the currencies the gateway accepts.
EXPONENTS: dict[str, int] = {
    **dict.fromkeys(
        [
            "AED",
            "ARS",
            "AUD",
            "BAM",
            "BDT",
            "BGN",
            "BRL",
            "BYN",
            "CAD",
            "CHF",
            "CNY",
            "COP",
            "CZK",
            "DKK",
            "DZD",
            "EGP",
            "EUR",
            "GBP",
            "GEL",
            "GHS",
            "HKD",
            "HUF",
            "IDR",
            "ILS",
            "INR",
            "KES",
            "KZT",
            "MAD",
            "MDL",
            "MKD",
            "MXN",
            "MYR",
            "NGN",
            "NOK",
            "NZD",
            "PEN",
            "PHP",
            "PKR",
            "PLN",
            "QAR",
            "RON",
            "RSD",
            "RUB",
            "SAR",
            "SEK",
            "SGD",
            "THB",
            "TRY",
            "TWD",
            "UAH",
            "USD",
            "UZS",
            "ZAR",
        ],
        2,
    ),
    **dict.fromkeys(["CLP", "ISK", "JPY", "KRW", "PYG", "UGX", "VND", "XAF", "XOF"], 0),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
}

HUB88_SCALE = 100_000  # Hub88 sends every amount as value x 100000, whatever the currency


class MoneyError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code  # invalid_amount | unsupported_currency


def exponent(currency: str) -> int:
    try:
        return EXPONENTS[currency]
    except KeyError:
        raise MoneyError("unsupported_currency", f"unsupported currency '{currency}'") from None


def check_minor_amount(amount: object, currency: str) -> int:
    """The amount of a unified request: a positive integer of minor units."""
    exponent(currency)
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise MoneyError("invalid_amount", "amount must be an integer of minor units")
    if amount <= 0:
        raise MoneyError("invalid_amount", "amount must be positive")
    return amount


def to_decimal(minor: int, currency: str) -> Decimal:
    """1050 EUR minor units -> Decimal('10.50')."""
    exp = exponent(currency)
    return Decimal(minor).scaleb(-exp).quantize(Decimal(1).scaleb(-exp))


def from_decimal(value: Decimal | str, currency: str) -> int:
    """Decimal('10.50') EUR -> 1050; more decimals than the currency has is an error."""
    exp = exponent(currency)
    try:
        dec = Decimal(value)
    except (InvalidOperation, TypeError):
        raise MoneyError("invalid_amount", f"not a decimal amount: {value!r}") from None
    if not dec.is_finite():
        raise MoneyError("invalid_amount", "amount must be finite")
    minor = dec.scaleb(exp)
    if minor != minor.to_integral_value():
        raise MoneyError("invalid_amount", f"{currency} has {exp} decimals; {value} has more")
    return int(minor)


def to_hub88_units(minor: int, currency: str) -> int:
    """Minor units -> Hub88's integer of value x 100000 (EUR 3.56 -> 356000)."""
    return int(to_decimal(minor, currency) * HUB88_SCALE)


def from_hub88_units(units: int, currency: str) -> int:
    """Hub88 units -> minor units, refusing fractions of a minor unit."""
    return from_decimal(Decimal(units) / HUB88_SCALE, currency)
