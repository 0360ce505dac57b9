"""Start every simulator at once, with throwaway credentials made on the spot.

Used by `casino-gateway demo` and by the tests. Nothing here is a real secret: each run
makes new keys, and the private Hub88 key never touches the disk.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from simulators import adyen, casino_wallet, hub88, slotegrator, stripe, trustly
from simulators.faults import SimulatorServer

DEFAULT_PORTS = {
    "hub88": hub88.DEFAULT_PORT,
    "slotegrator": slotegrator.DEFAULT_PORT,
    "stripe": stripe.DEFAULT_PORT,
    "adyen": adyen.DEFAULT_PORT,
    "trustly": trustly.DEFAULT_PORT,
}


# The merchant's Trustly API username (the password is made at start).
TRUSTLY_USERNAME = "casino"
# The reference casino wallet (`simulators.casino_wallet`) starts when named ("wallet"), with
# this player and balance (minor units) to play rounds with.
WALLET_PLAYERS = {"player-42": ("EUR", 100_000)}


def ports_from(base: int, names: Iterable[str]) -> dict[str, int]:
    """Each named simulator on base + its place in DEFAULT_PORTS: hub88 base, adyen base + 3."""
    order = list(DEFAULT_PORTS)
    return {name: base + order.index(name) for name in names}


@dataclass(frozen=True)
class DemoSecrets:
    hub88_private_pem: str
    hub88_public_pem: str
    slotegrator_key: str
    stripe_secret_key: str
    stripe_webhook_secret: str
    adyen_api_key: str
    adyen_hmac_key: str
    client_key: str
    # Trustly: the merchant's key pair (the gateway signs, the simulator checks) and
    # Trustly's (the simulator signs, the gateway checks).
    trustly_password: str = ""
    trustly_merchant_private_pem: str = ""
    trustly_merchant_public_pem: str = ""
    trustly_private_pem: str = ""
    trustly_public_pem: str = ""
    # Hub88's own key pair (it signs its wallet callbacks; the gateway checks them) and the
    # secret the gateway signs its calls to the casino's wallet with.
    hub88_wallet_private_pem: str = ""
    hub88_wallet_public_pem: str = ""
    wallet_secret: str = ""

    def env(self) -> dict[str, str]:
        """The variables config/providers.yaml names."""
        return {
            "HUB88_PRIVATE_KEY": self.hub88_private_pem,
            "SLOTEGRATOR_KEY": self.slotegrator_key,
            "STRIPE_SECRET_KEY": self.stripe_secret_key,
            "STRIPE_WEBHOOK_SECRET": self.stripe_webhook_secret,
            "ADYEN_API_KEY": self.adyen_api_key,
            "ADYEN_HMAC_KEY": self.adyen_hmac_key,
            "WEB_API_KEY": self.client_key,
            "HUB88_WALLET_PUBLIC_KEY": self.hub88_wallet_public_pem,
            "WALLET_SIGNING_SECRET": self.wallet_secret,
            "TRUSTLY_PASSWORD": self.trustly_password,
            "TRUSTLY_PRIVATE_KEY": self.trustly_merchant_private_pem,
            "TRUSTLY_PUBLIC_KEY": self.trustly_public_pem,
        }


def make_secrets() -> DemoSecrets:
    private_pem, public_pem = hub88.generate_operator_keypair()
    merchant_private, merchant_public = trustly.generate_keypair()
    trustly_private, trustly_public = trustly.generate_keypair()
    hub88_wallet_private, hub88_wallet_public = hub88.generate_operator_keypair()
    return DemoSecrets(
        hub88_private_pem=private_pem,
        hub88_public_pem=public_pem,
        slotegrator_key=secrets.token_hex(20),
        stripe_secret_key="sk_test_" + secrets.token_urlsafe(24),
        stripe_webhook_secret="whsec_" + secrets.token_urlsafe(24),
        adyen_api_key="AQE" + secrets.token_urlsafe(32),
        adyen_hmac_key=secrets.token_hex(32).upper(),
        client_key="demo_" + secrets.token_urlsafe(24),
        trustly_password=secrets.token_urlsafe(18),
        trustly_merchant_private_pem=merchant_private,
        trustly_merchant_public_pem=merchant_public,
        trustly_private_pem=trustly_private,
        trustly_public_pem=trustly_public,
        hub88_wallet_private_pem=hub88_wallet_private,
        hub88_wallet_public_pem=hub88_wallet_public,
        wallet_secret=secrets.token_urlsafe(32),
    )


@dataclass
class Stack:
    secrets: DemoSecrets
    servers: dict[str, SimulatorServer] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return self.servers[name].url

    async def close(self) -> None:
        for server in self.servers.values():
            await server.close()


async def start_stack(
    demo: DemoSecrets,
    ports: Mapping[str, int] | None = None,
    *,
    webhook_base_url: str | None = None,
    auto_complete_s: float | None = None,
    per_page: int = 8,
    host: str = "127.0.0.1",
) -> Stack:
    """Start the simulators named in `ports` (the five providers' by default; the casino
    wallet when named); port 0 picks a free one. With `webhook_base_url` (the
    gateway), the aggregators' wallet callbacks go to its `/wallet/<adapter name>`."""
    ports = DEFAULT_PORTS if ports is None else ports
    hook = (
        (lambda p: f"{webhook_base_url}/v1/webhooks/{p}") if webhook_base_url else (lambda p: None)
    )
    wallet = (
        (lambda p: f"{webhook_base_url}/wallet/{p}") if webhook_base_url else (lambda p: None)
    )
    factories = {
        "hub88": lambda: hub88.create_app(
            operator_public_key_pem=demo.hub88_public_pem,
            hub88_private_key_pem=demo.hub88_wallet_private_pem or None,
            wallet_url=wallet("hub88"),
        ),
        "slotegrator": lambda: slotegrator.create_app(
            merchant_key=demo.slotegrator_key, per_page=per_page, wallet_url=wallet("slotegrator")
        ),
        "wallet": lambda: casino_wallet.create_app(
            secret=demo.wallet_secret, players=WALLET_PLAYERS
        ),
        "stripe": lambda: stripe.create_app(
            demo.stripe_secret_key,
            webhook_url=hook("stripe"),
            webhook_secret=demo.stripe_webhook_secret,
            auto_complete_s=auto_complete_s,
        ),
        "adyen": lambda: adyen.create_app(
            api_key=demo.adyen_api_key,
            webhook_url=hook("adyen"),
            hmac_key=demo.adyen_hmac_key,
            auto_complete_s=auto_complete_s,
        ),
        # Trustly sends each notification to the NotificationURL of its order.
        "trustly": lambda: trustly.create_app(
            username=TRUSTLY_USERNAME,
            password=demo.trustly_password,
            merchant_public_key_pem=demo.trustly_merchant_public_pem,
            trustly_private_key_pem=demo.trustly_private_pem,
            auto_complete_s=auto_complete_s,
        ),
    }
    stack = Stack(demo)
    try:
        for name, port in ports.items():
            stack.servers[name] = await SimulatorServer(factories[name](), host, port).start()
    except BaseException:
        await stack.close()
        raise
    return stack
