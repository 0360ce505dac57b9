"""An Adyen Checkout API v71 on a local port: payments, payment methods and webhooks.

Endpoints (JSON, header `X-API-Key` required, else 401 with errorCode "000"):
- `POST /v71/payments`: validates like Adyen (errors `{status, errorCode, message,
  errorType, pspReference?}`): unknown or missing merchantAccount -> 403 "901"; missing
  amount -> 422 "100"; amount value not a positive integer -> 422 "137"; currency not three
  upper-case letters -> 422 "138"; no reference -> 422 "130"; no paymentMethod.type -> 422
  "14_006"; no returnUrl -> 422 "14_030"; a body that is not a JSON object -> 400 "000".
  paymentMethod.type ``scheme`` answers ``RedirectShopper`` with a redirect action; every
  other type answers ``Pending``.
- `POST /v71/paymentMethods`: `{"paymentMethods": [...]}` for the merchant account.

Idempotency-Key: a processed request is stored under its key; the same key with the same
JSON body replays the stored answer (with the `Idempotency-Key` header echoed, as Adyen
does) and records nothing new. The same key with a different body answers HTTP 409
errorCode "704" "request already processed or in progress", errorType "validation": the
answer Adyen gives for a key it already holds. Rejected requests (401/403/4xx validation)
are not stored, so their key may be used again.

- `POST /v71/payments/{pspReference}/refunds` (`simulators.adyen.modifications`): a refund
  of an authorised payment, at most what is left of it, answers 201 ``received``; its
  outcome is sent by `POST /_sim/refunds/{pspReference}/complete` with `{"outcome":
  "refunded" | "failed"}` as a REFUND notification.
- `POST /btl/v4/transfers` (`simulators.adyen.transfers`): payouts, answered with a
  ``received`` Transfer; `POST /_sim/transfers/{id}/complete` with `{"status": "booked" |
  "failed" | "returned"}` sends its ``balancePlatform.transfer.updated`` webhook, signed in
  the ``HmacSignature`` header.

Magic amounts (`amount.value`):
- 5000002: ``Refused``, refusalReason "Refused", refusalReasonCode "2" (a soft decline).
- 5000012: ``Refused``, refusalReason "Not enough balance", refusalReasonCode "12" (a hard
  decline).
- 5000500: the payment is recorded, then the answer is HTTP 500 ("000", "internal"): the
  caller cannot know whether money moved. A retry with the same Idempotency-Key gets the
  payment's real answer, as a lost answer would on Adyen.

Control endpoints (besides `simulators.faults`' `/_sim/faults` and `/_sim/stats`):
- `GET /_sim/payments`: `{"payments": [...]}`, every recorded payment, oldest first.
- `POST /_sim/payments/{pspReference}/complete` with `{"outcome": "authorised" | "refused" |
  "cancelled" | "refund"}`: moves the payment on (409 if it cannot move that way, 404 if
  unknown) and, when `webhook_url` is set, POSTs a standard notification signed with
  `hmac_key` there. The answer reports the notification and whether the receiver answered
  the literal `[accepted]`. Cancellation and refund are modifications with their own
  pspReference and the payment's in `originalReference`, as on Adyen.
- `GET /_sim/webhooks`: every delivery attempt, oldest first.
Injected faults (`error`, `rate_limited`) answer in Adyen's error shape with errorCode "905"
and errorType "internal".

Settings of `create_app`: `api_key` (required), `merchant_account` (default "DemoCasino"),
`webhook_url`, `hmac_key` (hex, as Adyen's Customer Area shows it; without it notifications
go out unsigned), `auto_complete_s` (authorise every new pending payment after that many
seconds and send its webhook; for demos).

Modules: `app` (`create_app` and its routes), `api` (the ``/v71`` endpoints and Adyen's
error shape), `control` (the ``/_sim`` endpoints), `webhooks` (outcomes, signed
notifications, delivery, auto-completion), `state` (what the simulator remembers). This
module re-exports their public names, so ``from simulators.adyen import create_app`` keeps
working.
"""

from simulators.adyen.api import (
    MAGIC_INTERNAL_ERROR,
    MAGIC_NOT_ENOUGH_BALANCE,
    MAGIC_REFUSED,
    PAYMENT_METHODS,
    PAYMENT_METHODS_PATH,
    PAYMENTS_PATH,
    REDIRECT_BASE_URL,
    AdyenFailure,
    create_payment,
    error_response,
    payment_methods,
)
from simulators.adyen.app import DEFAULT_PORT, create_app
from simulators.adyen.control import complete_payment, list_payments, list_webhooks
from simulators.adyen.state import (
    MODIFICATIONS,
    OUTCOMES,
    STATE,
    AdyenState,
    SimPayment,
    StoredAnswer,
    new_psp_reference,
)
from simulators.adyen.webhooks import complete, sign_notification

__all__ = [
    "DEFAULT_PORT",
    "MAGIC_INTERNAL_ERROR",
    "MAGIC_NOT_ENOUGH_BALANCE",
    "MAGIC_REFUSED",
    "MODIFICATIONS",
    "OUTCOMES",
    "PAYMENTS_PATH",
    "PAYMENT_METHODS",
    "PAYMENT_METHODS_PATH",
    "REDIRECT_BASE_URL",
    "STATE",
    "AdyenFailure",
    "AdyenState",
    "SimPayment",
    "StoredAnswer",
    "complete",
    "complete_payment",
    "create_app",
    "create_payment",
    "error_response",
    "list_payments",
    "list_webhooks",
    "new_psp_reference",
    "payment_methods",
    "sign_notification",
]
