"""Hub88 game aggregator: the operator API (game list, launch) and its seamless wallet.

`adapters.hub88.adapter` builds and reads the calls the gateway makes to Hub88;
`adapters.hub88.wallet` verifies and answers the wallet callbacks Hub88 makes to the gateway.
"""

from adapters.hub88.adapter import SPEC, Hub88Adapter, create, parse_game
from adapters.hub88.wallet import Hub88Wallet

__all__ = ["SPEC", "Hub88Adapter", "Hub88Wallet", "create", "parse_game"]
