"""`create_app`: the aiohttp application with its settings and routes, and the lifecycle of
its HTTP session and background tasks.
"""

from __future__ import annotations

from aiohttp import web

from simulators import faults
from simulators.adyen.api import (
    PAYMENT_METHODS_PATH,
    PAYMENTS_PATH,
    create_payment,
    error_response,
    payment_methods,
)
from simulators.adyen.control import complete_payment, list_payments, list_webhooks
from simulators.adyen.modifications import complete_refund, refund_payment
from simulators.adyen.state import STATE, AdyenState
from simulators.adyen.transfers import TRANSFERS_PATH, complete_transfer, create_transfer
from simulators.outbound import outbound_lifecycle

DEFAULT_PORT = 9104


def create_app(
    *,
    api_key: str,
    merchant_account: str = "DemoCasino",
    webhook_url: str | None = None,
    hmac_key: str | None = None,
    auto_complete_s: float | None = None,
) -> web.Application:
    if not api_key:
        raise ValueError("api_key is required")
    key_bytes = None
    if hmac_key:
        try:
            key_bytes = bytes.fromhex(hmac_key)
        except ValueError:
            raise ValueError("hmac_key must be hex-encoded") from None
    if auto_complete_s is not None and auto_complete_s < 0:
        raise ValueError("auto_complete_s must not be negative")

    app = web.Application()
    app[STATE] = AdyenState(
        api_key=api_key,
        merchant_account=merchant_account,
        webhook_url=webhook_url,
        hmac_key=key_bytes,
        auto_complete_s=auto_complete_s,
    )
    faults.install(app, error_response)
    app.cleanup_ctx.append(outbound_lifecycle(STATE))
    app.router.add_post(PAYMENTS_PATH, create_payment)
    app.router.add_post(PAYMENT_METHODS_PATH, payment_methods)
    app.router.add_post(PAYMENTS_PATH + "/{psp}/refunds", refund_payment)
    app.router.add_post(TRANSFERS_PATH, create_transfer)
    app.router.add_post("/_sim/refunds/{psp}/complete", complete_refund)
    app.router.add_post("/_sim/transfers/{id}/complete", complete_transfer)
    app.router.add_get("/_sim/payments", list_payments)
    app.router.add_post("/_sim/payments/{psp}/complete", complete_payment)
    app.router.add_get("/_sim/webhooks", list_webhooks)
    return app


