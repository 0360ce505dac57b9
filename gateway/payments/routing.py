"""Which providers a new payment is offered to: the route's rules applied to its body."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from policies.routing import DEFAULT_RULE, PaymentFacts, Routed, route_payment

if TYPE_CHECKING:
    from gateway.runtime.gateway import Runtime


def route_of(rt: Runtime, client_id: str, key: str, body: dict[str, Any]) -> Routed:
    """The rule that fits and its order; a split is keyed by the client's idempotency key,
    so every replay of a payment goes the same way."""
    route = rt.config.routes.get("payments.create")
    if route is None:
        return Routed(DEFAULT_RULE, ())
    facts = PaymentFacts(
        type=body["type"],
        method=body["method"]["type"],
        currency=body["currency"],
        amount=body["amount"],
        country=body.get("country"),
    )
    return route_payment(route.rules, route.providers, facts, f"{client_id}\0{key}")
