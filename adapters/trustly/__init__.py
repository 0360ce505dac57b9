"""Trustly: bank payments (deposits, payouts to players, refunds) over JSON-RPC 1.1.

Unlike Stripe and Adyen, every call is `POST /api/1` with a JSON-RPC body signed with the
merchant's RSA key (`adapters.trustly.signing`), and every answer and notification is signed
with Trustly's: nothing Trustly sends is believed unless it verifies.

- Deposit (bank_transfer, in Trustly's currencies): answers an order id and the URL of the
  player's bank flow, so the payment is `requires_action` with a redirect; notifications
  settle it.
- Withdraw (a payout): the player confirms it at Trustly's URL (the amount pinned with
  SuggestedMinAmount = SuggestedMaxAmount), so it is `pending` with a redirect; `debit`
  means the player confirmed, `payoutconfirmation` that the money went out (enable that
  notification on the Trustly account, or payouts stay `processing`).
- Refund: of a deposit's order; accepted means pending, notifications with `"refund": "1"`
  settle it. A Refund has no key Trustly dedupes on, so one whose answer was lost is never
  sent again (`SPEC.refunds_idempotent` is false): it stays pending until a notification.

`MessageID` is the gateway's reference of the payment (stable for one client key): Trustly
refuses a second order with it (637), which the gateway reads as "the payment is at
Trustly" (202, never failed over). Amounts are decimal strings, converted exactly.
Notifications (`adapters.trustly.notifications`) are answered with the signed JSON-RPC
result Trustly expects, `{"status": "OK"}`.

Credentials: `username`, `password` (secret), `private_key` (secret, the merchant's PEM RSA
key), `trustly_public_key` (Trustly's PEM key, as its documentation publishes it for test
and live) and `notification_url` (the gateway's `POST /v1/webhooks/<provider name>`, as
Trustly reaches it).
"""

from adapters.trustly.adapter import CURRENCIES, SPEC, TrustlyAdapter, create

__all__ = ["CURRENCIES", "SPEC", "TrustlyAdapter", "create"]
