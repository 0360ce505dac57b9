"""Slotegrator GIS game aggregator: the merchant API (game list, launch) and its wallet.

`adapters.slotegrator.adapter` builds and reads the calls the gateway makes to Slotegrator;
`adapters.slotegrator.wallet` verifies and answers the wallet callbacks it makes to the
gateway. Both sign with the merchant key (`adapters.slotegrator.adapter.sign`).
"""

from adapters.slotegrator.adapter import MAX_PAGES, SPEC, SlotegratorAdapter, create, parse_game
from adapters.slotegrator.wallet import SlotegratorWallet

__all__ = ["MAX_PAGES", "SPEC", "SlotegratorAdapter", "SlotegratorWallet", "create", "parse_game"]
