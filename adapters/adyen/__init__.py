"""Adyen Checkout API v71: card, PayPal and bank-transfer deposits, and payment webhooks.

Requests: JSON with header `X-API-Key`; every `/payments` call carries `Idempotency-Key`
(Adyen keeps keys for at least 31 days, at most 64 characters).

Payment method names sent as `paymentMethod.type` (Adyen's own type names):
- card          -> ``scheme``: Adyen's card type; the shopper enters the card on Adyen's
                   pages (redirect or 3-D Secure), so card data never reaches the gateway.
- ewallet       -> ``paypal``.
- bank_transfer -> ``bankTransfer_IBAN``: the shopper pays into an IBAN Adyen gives.
                   ``sepadirectdebit`` is not used: it needs the shopper's IBAN and name in
                   the request, which the unified request does not carry.
- crypto        -> not offered by Adyen: `create_request` raises a failover-safe
                   ProviderError (provider_code ``unsupported_payment_method``).

Withdrawals (payouts to players) go through the Transfers API (`adapters.adyen.payouts`):
a ``bank`` transfer from `credentials.balance_account_id` to the IBAN in the request's
`bank_account`, under the payment's Idempotency-Key, confirmed by
``balancePlatform.transfer.updated`` webhooks. A payout without a balance account, without a
bank account or by another method than ``bank_transfer`` is refused before sending
(failover-safe). Adyen's Balance Platform has its own host and API credential: in
production, configure a second provider with this adapter, the Balance Platform's base URL
and its key, and route withdrawals to it. A missing return URL on a deposit is refused
before sending too (``missing_return_url``): Adyen requires `returnUrl` on every
`/payments` call.

Refunds: ``POST /v71/payments/{pspReference}/refunds`` (`amount`, `merchantAccount`,
`reference` = the gateway's refund id, `merchantRefundReason`) under the refund's
Idempotency-Key answers ``received`` (the refund is pending); the REFUND webhook settles it.

Reading back: Checkout has no endpoint that returns a payment by its pspReference, so
`get_request` returns None; the gateway keeps what `/payments` said and webhooks update it.

Error classification of a `/payments` answer (the double-charge rule):

=====================================  ===========  ===========  ========
answer                                 failover     retry same   rejected
=====================================  ===========  ===========  ========
2xx with pspReference and resultCode   a PaymentResult (Refused/Error -> status failed)
2xx without them, or not JSON          no           yes          no
2xx with an unknown resultCode         no           yes          no
errorCode 704 (idempotency key in use  no           yes          no
  or reused with another body)
400, 401, 403, 404, 405, 413, 415, 422 yes          no           yes
429 (retry_after_s from Retry-After)   yes          no           no
409, 5xx, any other status             no           yes          no
=====================================  ===========  ===========  ========

Webhooks ("standard notifications"): `{"live": "false", "notificationItems":
[{"NotificationRequestItem": {...}}]}`. Each item carries `additionalData.hmacSignature` =
base64(HMAC-SHA256(bytes.fromhex(hmac_key), payload)) where payload joins with ":"
pspReference, originalReference (or ""), merchantAccountCode, merchantReference, amount
value, amount currency, eventCode and success. Adyen's scheme has no timestamp, so there is
no replay window to check: duplicates are caught by the event id
(`pspReference:eventCode:success`, the triple that makes an Adyen notification unique).
Any item that fails verification rejects the whole batch (WebhookRejected), and so does
every webhook when no hmac_key is configured. Adyen expects the literal body `[accepted]` in
answer, or it retries the delivery.

Events: AUTHORISATION success "true" -> payment.succeeded, "false" -> payment.failed;
CANCELLATION "true" -> payment.canceled; REFUND "true" -> refund.succeeded, "false" ->
refund.failed; REFUND_FAILED "true" -> refund.failed (modifications name the payment in
originalReference, used as provider_reference when present, and a refund's own
pspReference is its refund_reference). Every other event, and a failed cancellation (the
payment is unchanged), is verified and skipped. Transfer webhooks (payouts) are told apart
by their ``HmacSignature`` header.

Refusal reasons are read as soft or hard declines in `adapters.adyen.declines`.
"""

from adapters.adyen.adapter import API_VERSION, SPEC, AdyenAdapter, create

__all__ = ["API_VERSION", "SPEC", "AdyenAdapter", "create"]
