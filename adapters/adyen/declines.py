"""Adyen's refusal reasons read as soft or hard: may another acquirer approve this card?

Keyed by `refusalReasonCode` as Adyen documents it (Development resources, "Refusal
reasons"), with the `refusalReason` text for answers that carry only the text. Soft: no
reason that would hold at another acquirer (a bare "Refused", a referral, the acquirer or
issuer unavailable, a request not submitted, Adyen's `Error` result). Hard: the card, the
player or a fraud check refused, or the player already acted (3-D Secure). A reason missing
here is treated as hard by the gateway: never cascade on a reason nobody has read.
"""

from __future__ import annotations

from adapters.base import Decline

# refusalReasonCode -> (refusalReason, soft or hard)
REASONS: dict[str, tuple[str, Decline]] = {
    "2": ("Refused", "soft"),
    "3": ("Referral", "soft"),
    "4": ("Acquirer Error", "soft"),
    "5": ("Blocked Card", "hard"),
    "6": ("Expired Card", "hard"),
    "7": ("Invalid Amount", "hard"),
    "8": ("Invalid Card Number", "hard"),
    "9": ("Issuer Unavailable", "soft"),
    "10": ("Not supported", "hard"),
    "11": ("3D Not Authenticated", "hard"),
    "12": ("Not enough balance", "hard"),
    "14": ("Acquirer Fraud", "hard"),
    "15": ("Cancelled", "hard"),
    "16": ("Shopper Cancelled", "hard"),
    "17": ("Invalid Pin", "hard"),
    "18": ("Pin tries exceeded", "hard"),
    "19": ("Pin validation not possible", "hard"),
    "20": ("FRAUD", "hard"),
    "21": ("Not Submitted", "soft"),
    "22": ("FRAUD-CANCELLED", "hard"),
    "23": ("Transaction Not Permitted", "hard"),
    "24": ("CVC Declined", "hard"),
    "25": ("Restricted Card", "hard"),
    "26": ("Revocation Of Auth", "hard"),
    "27": ("Declined Non Generic", "hard"),
    "28": ("Withdrawal amount exceeded", "hard"),
    "29": ("Withdrawal count exceeded", "hard"),
    "31": ("Issuer Suspected Fraud", "hard"),
    "32": ("AVS Declined", "hard"),
    "33": ("Card requires online pin", "hard"),
    "34": ("No checking account available on Card", "hard"),
    "35": ("No savings account available on Card", "hard"),
    "36": ("Mobile pin required", "hard"),
    "37": ("Contactless fallback", "hard"),
    "38": ("Authentication required", "hard"),
    "39": ("RReq not received from DS", "hard"),
    "40": ("Current AID is in Penalty Box", "hard"),
    "41": ("CVM Required Restart Payment", "hard"),
    "42": ("3DS Authentication Error", "hard"),
    "43": ("Online PIN required", "hard"),
    "44": ("Try another interface", "hard"),
    "45": ("Chip downgrade mode", "hard"),
    "46": ("Transaction blocked by Adyen to prevent excessive retry fees", "hard"),
}
# resultCode "Error": Adyen could not process the payment; nothing was authorised.
ERROR: Decline = "soft"

_BY_TEXT: dict[str, Decline] = {text.lower(): kind for text, kind in REASONS.values()}


def classify(decline_code: str | None) -> Decline | None:
    """The decline code the adapter records (a refusalReasonCode, a refusalReason text, or
    "error") read as "soft" or "hard"; None when unknown."""
    if decline_code is None:
        return None
    if decline_code == "error":
        return ERROR
    reason = REASONS.get(decline_code)
    if reason is not None:
        return reason[1]
    return _BY_TEXT.get(decline_code.strip().lower())
