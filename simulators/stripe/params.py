"""Checks of single ``POST /v1/payment_intents`` parameters (amount, currency, metadata,
arrays), each raising the error Stripe answers for that parameter.
"""

from __future__ import annotations

import re
from typing import Any

from simulators.stripe.wire import StripeApiError

MAX_AMOUNT = 99_999_999

CURRENCIES = frozenset((
    "usd", "aed", "afn", "all", "amd", "ang", "aoa", "ars", "aud", "awg", "azn", "bam", "bbd",
    "bdt", "bgn", "bhd", "bif", "bmd", "bnd", "bob", "brl", "bsd", "bwp", "byn", "bzd", "cad",
    "cdf", "chf", "clp", "cny", "cop", "crc", "cve", "czk", "djf", "dkk", "dop", "dzd", "egp",
    "etb", "eur", "fjd", "fkp", "gbp", "gel", "gip", "gmd", "gnf", "gtq", "gyd", "hkd", "hnl",
    "htg", "huf", "idr", "ils", "inr", "isk", "jmd", "jod", "jpy", "kes", "kgs", "khr", "kmf",
    "krw", "kwd", "kyd", "kzt", "lak", "lbp", "lkr", "lrd", "lsl", "mad", "mdl", "mga", "mkd",
    "mmk", "mnt", "mop", "mur", "mvr", "mwk", "mxn", "myr", "mzn", "nad", "ngn", "nio", "nok",
    "npr", "nzd", "omr", "pab", "pen", "pgk", "php", "pkr", "pln", "pyg", "qar", "ron", "rsd",
    "rub", "rwf", "sar", "sbd", "scr", "sek", "sgd", "shp", "sle", "sos", "srd", "std", "szl",
    "thb", "tjs", "top", "try", "ttd", "twd", "tzs", "uah", "ugx", "uyu", "uzs", "vnd", "vuv",
    "wst", "xaf", "xcd", "xof", "xpf", "yer", "zar", "zmw",
))


def as_list(value: Any, param: str) -> list[str]:
    if isinstance(value, dict) and all(k.isdigit() for k in value):
        value = [value[k] for k in sorted(value, key=int)]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise StripeApiError(400, f"Invalid array: {param}", param=param)
    return value


def parse_amount(params: dict[str, Any]) -> int:
    raw = params.get("amount")
    if raw is None:
        raise StripeApiError(
            400, "Missing required param: amount.", code="parameter_missing", param="amount"
        )
    if not isinstance(raw, str) or not re.fullmatch(r"-?\d+", raw):
        raise StripeApiError(
            400, f"Invalid integer: {raw}", code="parameter_invalid_integer", param="amount"
        )
    amount = int(raw)
    if amount < 1:
        raise StripeApiError(
            400, "This value must be greater than or equal to 1.",
            code="parameter_invalid_integer", param="amount",
        )
    if amount > MAX_AMOUNT:
        raise StripeApiError(
            400, f"Amount must be no more than {MAX_AMOUNT}.", code="amount_too_large",
            param="amount",
        )
    return amount


def parse_currency(params: dict[str, Any]) -> str:
    raw = params.get("currency")
    if raw is None:
        raise StripeApiError(
            400, "Missing required param: currency.", code="parameter_missing", param="currency"
        )
    currency = raw.lower() if isinstance(raw, str) else ""
    if currency not in CURRENCIES:
        raise StripeApiError(
            400,
            f"Invalid currency: {raw}. Stripe currently supports these currencies: "
            f"{', '.join(sorted(CURRENCIES))}",
            param="currency",
        )
    return currency


def parse_metadata(params: dict[str, Any]) -> dict[str, str]:
    raw = params.get("metadata", {})
    if raw == "":
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise StripeApiError(400, "Invalid hash", param="metadata")
    metadata = {k: v for k, v in raw.items() if v != ""}
    if len(metadata) > 50:
        raise StripeApiError(400, "You can have up to 50 metadata keys.", param="metadata")
    for key, value in metadata.items():
        if len(key) > 40:
            raise StripeApiError(
                400, "Metadata keys can have up to 40 characters.", param=f"metadata[{key}]"
            )
        if len(value) > 500:
            raise StripeApiError(
                400, "Metadata values can have up to 500 characters.", param=f"metadata[{key}]"
            )
    return metadata
