"""Throwaway secrets for one run: the gateway's keys (RSA keys for Hub88 made for the run:
the operator's, and Hub88's own for row W's wallet callbacks), handed to each gateway in its
environment."""

from __future__ import annotations

import secrets
import sys
from dataclasses import dataclass, field

from paths import ROOT


@dataclass
class Secrets:
    hub88_private_pem: str
    # Hub88's own key pair: row W signs its bet callbacks as Hub88, the gateway checks them.
    hub88_wallet_private_pem: str = ""
    hub88_wallet_public_pem: str = ""
    wallet_secret: str = field(default_factory=lambda: secrets.token_hex(32))
    slotegrator_key: str = field(default_factory=lambda: secrets.token_hex(20))
    stripe_secret_key: str = field(default_factory=lambda: "sk_test_" + secrets.token_hex(16))
    api_key: str = field(default_factory=lambda: "bench_" + secrets.token_hex(16))
    payment_id_secret: str = field(default_factory=lambda: secrets.token_hex(32))

    def env(self) -> dict[str, str]:
        return {
            "BENCH_HUB88_PRIVATE_KEY": self.hub88_private_pem,
            "BENCH_SLOTEGRATOR_KEY": self.slotegrator_key,
            "BENCH_STRIPE_SECRET_KEY": self.stripe_secret_key,
            "BENCH_API_KEY": self.api_key,
            "BENCH_PAYMENT_ID_SECRET": self.payment_id_secret,
            "BENCH_HUB88_WALLET_PUBLIC_KEY": self.hub88_wallet_public_pem,
            "BENCH_WALLET_SECRET": self.wallet_secret,
        }


def make_secrets() -> Secrets:
    # Imported here: the project's packages are found from the repository root, which is
    # not on sys.path when bench/run.py runs as a script.
    sys.path.insert(0, str(ROOT))
    from simulators.hub88 import generate_operator_keypair

    private_pem, _ = generate_operator_keypair()
    wallet_private, wallet_public = generate_operator_keypair()
    return Secrets(
        hub88_private_pem=private_pem,
        hub88_wallet_private_pem=wallet_private,
        hub88_wallet_public_pem=wallet_public,
    )
