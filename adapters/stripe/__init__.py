"""Stripe PaymentIntents: deposits through the gateway's unified payments API.

The adapter creates a PaymentIntent server-side and hands the frontend either the
intent's `client_secret` (confirmed with Stripe.js, so card data never reaches the
gateway) or a redirect URL. Requests are form-encoded as Stripe requires, and every
call pins ``Stripe-Version: 2024-06-20``, the version these shapes were written against.

Method types map onto ``payment_method_types[]`` as follows:

=============  ===============  ======================================================
unified        Stripe           note
=============  ===============  ======================================================
card           card
ewallet        card             Apple Pay / Google Pay are wallets of the card method
bank_transfer  sepa_debit       Stripe accepts it for EUR only
crypto         crypto           Stripe accepts it for USD only
=============  ===============  ======================================================

``return_url`` is not sent: Stripe accepts it only together with ``confirm=true``, and
confirmation happens client-side, where the frontend passes its own return URL.

Withdrawals: a PaymentIntent collects money and cannot pay a player out, so
`create_request` raises ProviderError(provider_code="unsupported_operation",
rejected=True, failover_safe=True) for them; nothing was sent, so another provider
may be tried.

Error classification (first matching row wins):

=====================================  ==========================================================
answer                                 result
=====================================  ==========================================================
2xx PaymentIntent                      PaymentResult (unknown status -> "pending")
2xx not a PaymentIntent                ProviderError retry_same (Stripe may have acted)
5xx (api_error)                        ProviderError retry_same
409 (concurrent use of the key)        ProviderError retry_same
idempotency_error                      ProviderError rejected, not failover_safe, no retry
                                         (the key is in use there: the payment stays with Stripe)
402 / card_error with payment_intent   PaymentResult status "failed", decline_code
402 / card_error without it, in       ProviderError rejected, failover_safe, final (a decline)
  Stripe's error shape
401, 403                               ProviderError rejected, failover_safe
429                                    ProviderError rejected, failover_safe, retry_after_s
404 resource_missing on a read         ProviderError status 404, rejected
400, 404, 422 in Stripe's error shape  ProviderError rejected, failover_safe
other 4xx, or a 4xx body that is not   ProviderError rejected, not failover_safe (it did not
  Stripe's error shape                   certainly come from Stripe before any money moved)
anything else (1xx, 3xx)               ProviderError retry_same
=====================================  ==========================================================

Refunds: ``POST /v1/refunds`` with ``payment_intent``, ``amount``, ``reason`` (when one of
Stripe's three) and ``metadata[gateway_refund_id]``, under the refund's Idempotency-Key (so
a refund asked again is deduplicated by Stripe). The Refund's status (pending,
requires_action, succeeded, failed, canceled) is read as the refund's; errors are classified
as for payments.

Decline codes are read as soft or hard in `adapters.stripe.declines`.

Webhooks: `verify_webhook` checks ``Stripe-Signature`` (HMAC-SHA256 of ``"{t}.{body}"``
with the endpoint secret, any of several ``v1`` values, 300 s tolerance either way) and
maps ``payment_intent.*`` events to payment events, ``refund.created|updated|failed`` to
``refund.succeeded|failed|canceled`` by the Refund's status (a pending one is no news), and
``charge.refunded`` of a fully refunded charge to ``payment.refunded``; other event types
are acknowledged and ignored.
"""

from adapters.stripe.adapter import API_VERSION, SPEC, StripeAdapter, create

__all__ = ["API_VERSION", "SPEC", "StripeAdapter", "create"]
