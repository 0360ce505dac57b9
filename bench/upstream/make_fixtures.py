"""Regenerate the fixed provider answers that nginx serves in the benchmark.

The JSON files beside this script are checked in, so a benchmark run never depends on
this script; it exists so the fixtures can be re-made (deterministically) when a provider's
shape in `simulators/` changes. Run from the repository root:

    python bench/upstream/make_fixtures.py
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

HUB88_GAMES = 300  # "a few hundred": the size of a mid-sized operator's catalog
SLOTEGRATOR_PAGE = 50  # Slotegrator's largest page (per-page is bounded to 1..50)
INTENT_ID = "pi_bench"
INTENT_CREATED = 1_764_000_000  # fixed, so the files never change between regenerations

# (name as Hub88 spells the studio, name as Slotegrator spells it): the same studio is
# spelled differently by each aggregator, as in real catalogs, so the merge does real work.
STUDIOS = (
    ("Pragmatic Play", "PragmaticPlay"),
    ("NetEnt", "Netent"),
    ("Play'n GO", "Play n GO"),
    ("Evolution Gaming", "Evolution"),
    ("Push Gaming", "Push Gaming"),
    ("Hacksaw Gaming", "Hacksaw"),
    ("Nolimit City", "NoLimit City"),
    ("Relax Gaming", "Relax"),
    ("Red Tiger", "Red Tiger Gaming"),
    ("Big Time Gaming", "BTG"),
    ("Yggdrasil", "Yggdrasil Gaming"),
    ("Thunderkick", "Thunderkick"),
)
ADJECTIVES = (
    "Golden", "Wild", "Mighty", "Lucky", "Mystic", "Royal", "Blazing", "Frozen",
    "Ancient", "Crystal", "Neon", "Savage", "Hidden", "Electric", "Sacred",
)  # fmt: skip
NOUNS = (
    "Pharaoh", "Dragon", "Buffalo", "Fortune", "Jungle", "Temple", "Vikings", "Gems",
    "Pirates", "Phoenix", "Wolves", "Riches", "Olympus", "Safari", "Treasure",
    "Samurai", "Atlantis", "Cherries", "Rhino", "Kraken",
)  # fmt: skip
CATEGORIES = ("slots",) * 7 + ("live", "table", "crash")
VOLATILITIES = ("low", "low-medium", "medium", "medium-high", "high", "very-high")


def _project() -> Any:
    sys.path.insert(0, str(ROOT))
    from simulators import catalog, hub88, slotegrator

    return catalog, hub88, slotegrator


def synthetic_games(catalog: Any, count: int, skip: int) -> list[Any]:
    """Deterministic made-up games; every third is sold by both aggregators."""
    games = []
    names = itertools.product(ADJECTIVES, NOUNS)
    for n, (adjective, noun) in enumerate(itertools.islice(names, skip, skip + count)):
        hub_studio, slot_studio = STUDIOS[n % len(STUDIOS)]
        category = CATEGORIES[n % len(CATEGORIES)]
        slug = f"{adjective}_{noun}".lower()
        uuid = f"7a2d{n:04x}-{skip:04x}-4b1e-8f00-{n:012x}"
        games.append(
            catalog.SimGame(
                name=f"{adjective} {noun}",
                category=category,
                rtp=f"{94 + (n * 37 % 300) / 100:.2f}",
                volatility=VOLATILITIES[n % 6] if category == "slots" else None,
                mobile=n % 5 != 0,
                hub88=(f"bench_{slug}", hub_studio),
                slotegrator=(uuid, slot_studio) if n % 3 == 0 else None,
            )
        )
    return games


def payment_intent() -> dict[str, Any]:
    """A card PaymentIntent as Stripe's API version 2024-06-20 returns it, still `processing`.

    nginx answers both the create (POST /v1/payment_intents) and the read-back with it. Not
    settled on purpose: the gateway stops asking the provider about a `succeeded` payment, and
    row E measures a read-back that reaches the upstream on every request.
    """
    return {
        "id": INTENT_ID,
        "object": "payment_intent",
        "amount": 2500,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic_async",
        "client_secret": f"{INTENT_ID}_secret_Vb7dKq2LmXwR9sTz3NcYh5PfA",
        "confirmation_method": "automatic",
        "created": INTENT_CREATED,
        "currency": "eur",
        "customer": None,
        "description": "deposit gw_bench",
        "invoice": None,
        "last_payment_error": None,
        "latest_charge": "ch_3QbenchAbCdEfGh1a2b3c4d",
        "livemode": False,
        "metadata": {"gateway_reference": "gw_bench", "player_id": "p-1001", "type": "deposit"},
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": "pm_1QbenchZyXwVuTs9r8q7p6o",
        "payment_method_configuration_details": None,
        "payment_method_options": {
            "card": {
                "installments": None,
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        },
        "payment_method_types": ["card"],
        "processing": None,
        "receipt_email": None,
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "processing",
        "transfer_data": None,
        "transfer_group": None,
    }


def write(name: str, data: Any) -> None:
    # Compact, as the providers send it; one trailing newline keeps the files diff-friendly.
    (HERE / name).write_text(json.dumps(data, separators=(",", ":")) + "\n")


def main() -> None:
    catalog, hub88, slotegrator = _project()
    sim_hub88 = catalog.hub88_games()
    extra = synthetic_games(catalog, HUB88_GAMES - len(sim_hub88), skip=0)
    write("hub88_game_list.json", [hub88.game_item(g) for g in [*sim_hub88, *extra]])

    sim_slot = catalog.slotegrator_games()
    shared = [g for g in extra if g.slotegrator is not None]
    page = [*sim_slot, *shared][:SLOTEGRATOR_PAGE]
    items = [slotegrator._game_item(g) for g in page]
    base = "https://api.slotegrator.example/games"
    write(
        "slotegrator_games.json",
        {
            "items": items,
            "_links": {
                "self": {"href": f"{base}?page=1"},
                "first": {"href": f"{base}?page=1"},
                "last": {"href": f"{base}?page=1"},
            },
            "_meta": {
                "totalCount": len(items),
                "pageCount": 1,
                "currentPage": 1,
                "perPage": SLOTEGRATOR_PAGE,
            },
        },
    )
    # Slotegrator's answer to a launch (POST /games/init), for row G.
    launched = page[0]
    write(
        "slotegrator_game_init.json",
        {"url": f"https://games.slotegrator.example/play/{launched.slotegrator[0]}?session=bench"},
    )
    intent = payment_intent()
    write("stripe_payment_intent.json", intent)
    # The Stripe adapter's health probe lists intents (GET /v1/payment_intents?limit=1).
    write(
        "stripe_payment_intents_list.json",
        {"object": "list", "data": [intent], "has_more": False, "url": "/v1/payment_intents"},
    )


if __name__ == "__main__":
    main()
