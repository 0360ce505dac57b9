"""A Stripe PaymentIntents simulator speaking Stripe's real wire format.

API (form-encoded requests, JSON answers, ``Authorization: Bearer <secret_key>``; HTTP Basic
with the key as user name is accepted too, as Stripe does):

- ``POST /v1/payment_intents``: ``amount`` (positive integer, minor units, at most 99999999),
  ``currency`` (a supported ISO code), ``payment_method_types[]``,
  ``automatic_payment_methods[enabled]``, ``description``, ``metadata[<key>]``,
  ``capture_method``, ``confirm`` (only ``false``), ``receipt_email``. Any other parameter is
  refused with ``parameter_unknown`` as Stripe does. A JSON body is refused with 400.
  New intents are ``requires_payment_method`` with ``client_secret = <id>_secret_<random>``.
- ``GET /v1/payment_intents/{id}`` (404 ``resource_missing`` when unknown) and
  ``GET /v1/payment_intents?limit=N`` (a list object, newest first, 1 <= N <= 100).
- ``Stripe-Version`` request header: validated and echoed; when absent the account default
  (the ``api_version`` setting, ``2024-06-20`` unless given) applies. Versions from
  2024-04-10 default ``capture_method`` to ``automatic_async``; versions from 2023-08-16
  enable ``automatic_payment_methods`` when no ``payment_method_types`` is given.
- ``Idempotency-Key`` as Stripe implements it: a result is saved only once the endpoint ran
  (validation and authentication failures are not saved, so a corrected retry may reuse the
  key); the same key with the same parameters replays the saved status and body with
  ``Idempotent-Replayed: true``, including a saved 402 or 500; the same key with other
  parameters, or on another endpoint, is a 400 ``idempotency_error``. Keys do not expire.

- ``POST /v1/refunds`` (`simulators.stripe.refunds`): refunds of a succeeded intent, with
  ``refund.*`` and ``charge.refunded`` events; a bank debit's refund stays ``pending`` until
  ``POST /_sim/refunds/{id}/complete``.

Magic amounts, for failure tests:

- ``4000002``: the intent is created, then declined: 402 ``card_error`` with ``code``
  ``card_declined``, ``decline_code`` ``generic_decline`` and ``error.payment_intent`` = the
  intent (status ``requires_payment_method`` with ``last_payment_error``).
- ``4000051``: the same with ``decline_code`` ``insufficient_funds`` (a hard decline).
- ``4000500``: the intent is created and stored, then the answer is a 500 ``api_error``: an
  ambiguous failure where the provider did act. A replay with the same Idempotency-Key
  returns the saved 500, as Stripe does; ``GET`` / the list show the intent.

Settings of `create_app`: ``secret_key`` (required), ``webhook_url`` and ``webhook_secret``
(events are POSTed there, signed ``Stripe-Signature: t=<unix>,v1=<hex>,v0=<hex>``; the ``v0``
is a test-mode decoy made with another key), ``auto_complete_s`` (each new intent succeeds
after that many seconds, with its webhook), ``api_version`` (the account default).

Control endpoints (never faulted or counted):

- ``POST /_sim/payment_intents/{id}/complete`` JSON ``{"outcome": "succeeded" |
  "payment_failed" | "canceled" | "processing" | "requires_action", "decline_code": ...}``
  moves the intent and, when ``webhook_url`` is set, delivers the signed event before
  answering ``{"payment_intent", "event", "delivery": {"status", "error"} | null}``.
  ``succeeded`` on a ``capture_method=manual`` intent gives ``requires_capture`` and a
  ``payment_intent.amount_capturable_updated`` event. A succeeded or canceled intent cannot
  move (400 ``payment_intent_unexpected_state``).
- ``POST /_sim/events/{id}/resend`` delivers an event again (signed afresh), as Stripe's
  retries do; ``GET /_sim/events`` lists events with their delivery attempts.
- Fault controls and call counters from `simulators.faults`.

Webhook deliveries are single attempts (Stripe retries for days; use ``resend`` for that).

Modules: `app` (`create_app`, routes, error middleware), `api` (the ``/v1`` endpoints),
`control` (the ``/_sim`` endpoints), `intents` (the PaymentIntent object and its outcomes),
`params` (checks of create parameters), `webhooks` (events, signing, delivery,
auto-completion), `state` (what the simulator remembers), `wire` (errors, JSON, API key,
version and form decoding). This module re-exports their public names, so
``from simulators.stripe import create_app`` keeps working.
"""

from simulators.stripe.api import (
    API_ERROR_AMOUNT,
    DECLINE_AMOUNT,
    HARD_DECLINE_AMOUNT,
    create_intent,
    get_intent,
    list_intents,
    unknown_route,
)
from simulators.stripe.app import (
    DEFAULT_API_VERSION,
    DEFAULT_PORT,
    Handler,
    create_app,
    stripe_errors,
)
from simulators.stripe.control import complete_intent, list_events, resend_event
from simulators.stripe.intents import (
    KNOWN_PARAMS,
    MUTABLE,
    OUTCOMES,
    PAYMENT_METHOD_TYPES,
    TERMINAL,
)
from simulators.stripe.params import CURRENCIES, MAX_AMOUNT
from simulators.stripe.state import STATE, SavedResponse, StripeState
from simulators.stripe.webhooks import sign
from simulators.stripe.wire import StripeApiError, error_response

__all__ = [
    "API_ERROR_AMOUNT",
    "CURRENCIES",
    "DECLINE_AMOUNT",
    "DEFAULT_API_VERSION",
    "DEFAULT_PORT",
    "HARD_DECLINE_AMOUNT",
    "KNOWN_PARAMS",
    "MAX_AMOUNT",
    "MUTABLE",
    "OUTCOMES",
    "PAYMENT_METHOD_TYPES",
    "STATE",
    "TERMINAL",
    "Handler",
    "SavedResponse",
    "StripeApiError",
    "StripeState",
    "complete_intent",
    "create_app",
    "create_intent",
    "error_response",
    "get_intent",
    "list_events",
    "list_intents",
    "resend_event",
    "sign",
    "stripe_errors",
    "unknown_route",
]
