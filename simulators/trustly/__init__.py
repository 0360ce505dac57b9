"""A Trustly simulator: the JSON-RPC 1.1 payments API, signed both ways, with notifications.

API (`POST /api/1`, `simulators.trustly.api`): Deposit and Withdraw (an order and the URL of
the player's flow), Refund (of a credited deposit, at most its amount in all) and Balance.
Every request's signature is checked with the merchant's public key (636 when it does not
verify) and its Username/Password (616); every answer is signed with Trustly's key. A
MessageID is single use (637 on its second order, also while the first is held by the
`hold_ms` fault); amounts must be decimal strings with two decimals (615), currencies
Trustly's (622).

Notifications (`simulators.trustly.notifications`) go to each order's NotificationURL,
signed with Trustly's key; the merchant's answer is checked for a signed `"status": "OK"`.
They are sent by `POST /_sim/orders/{orderid}/notify` with `{"method": "pending" | "credit" |
"debit" | "cancel" | "payoutconfirmation", "refund": false}` (with `"refund": true`, about the
order's oldest queued refund, carrying `"refund": "1"` and its amount), or automatically
after `auto_complete_s` (a deposit: pending then credit; a withdrawal: debit then
payoutconfirmation). `GET /_sim/orders` and `GET /_sim/notifications` list what happened.
Fault controls and call counters come from `simulators.faults`; an injected error is an
unsigned JSON-RPC error with the fault's HTTP status.

Keys: `create_app` takes the merchant's public key and Trustly's private key as PEM;
`generate_keypair()` makes throwaway ones.
"""

from simulators.trustly import notifications
from simulators.trustly.api import CURRENCIES, error_response
from simulators.trustly.app import CHECKOUT_URL, DEFAULT_PORT, create_app
from simulators.trustly.notifications import METHODS, notify
from simulators.trustly.signing import generate_keypair, sign, signature_ok
from simulators.trustly.state import STATE, Order, TrustlyState

__all__ = [
    "CHECKOUT_URL",
    "CURRENCIES",
    "DEFAULT_PORT",
    "METHODS",
    "STATE",
    "Order",
    "TrustlyState",
    "create_app",
    "error_response",
    "generate_keypair",
    "notifications",
    "notify",
    "sign",
    "signature_ok",
]
