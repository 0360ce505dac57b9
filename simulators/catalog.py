"""The games the simulated aggregators sell.

Some games are sold by both aggregators, each under its own id and with the studio
spelled its own way (``Pragmatic Play`` / ``PragmaticPlay``, ``Evolution Gaming`` /
``Evolution``), as real catalogs do; the gateway must merge those into one entry.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SimGame:
    name: str
    category: str  # slots | live | table | crash
    rtp: str | None  # decimal string, as the providers send it
    volatility: str | None  # low | low-medium | medium | medium-high | high | very-high
    mobile: bool
    hub88: tuple[str, str] | None  # (game_code, studio as Hub88 spells it)
    slotegrator: tuple[str, str] | None  # (uuid, studio as Slotegrator spells it)


def _g(name, category, rtp, vol, mobile=True, hub88=None, slotegrator=None) -> SimGame:
    return SimGame(name, category, rtp, vol, mobile, hub88, slotegrator)


GAMES: tuple[SimGame, ...] = (
    # sold by both aggregators
    _g(
        "Sweet Bonanza",
        "slots",
        "96.48",
        "high",
        hub88=("pp_sweet_bonanza", "Pragmatic Play"),
        slotegrator=("6f1c9a2e-0001-4a8b-9c1d-000000000001", "PragmaticPlay"),
    ),
    _g(
        "Gates of Olympus",
        "slots",
        "96.50",
        "very-high",
        hub88=("pp_gates_of_olympus", "Pragmatic Play"),
        slotegrator=("6f1c9a2e-0002-4a8b-9c1d-000000000002", "PragmaticPlay"),
    ),
    _g(
        "The Dog House",
        "slots",
        "96.51",
        "high",
        hub88=("pp_the_dog_house", "Pragmatic Play"),
        slotegrator=("6f1c9a2e-0003-4a8b-9c1d-000000000003", "PragmaticPlay"),
    ),
    _g(
        "Starburst",
        "slots",
        "96.09",
        "low",
        hub88=("netent_starburst", "NetEnt"),
        slotegrator=("6f1c9a2e-0004-4a8b-9c1d-000000000004", "Netent"),
    ),
    _g(
        "Gonzo's Quest",
        "slots",
        "95.97",
        "medium",
        hub88=("netent_gonzos_quest", "NetEnt"),
        slotegrator=("6f1c9a2e-0005-4a8b-9c1d-000000000005", "Netent"),
    ),
    _g(
        "Book of Dead",
        "slots",
        "96.21",
        "high",
        hub88=("png_book_of_dead", "Play'n GO"),
        slotegrator=("6f1c9a2e-0006-4a8b-9c1d-000000000006", "Play n GO"),
    ),
    _g(
        "Lightning Roulette",
        "live",
        "97.30",
        None,
        hub88=("evo_lightning_roulette", "Evolution Gaming"),
        slotegrator=("6f1c9a2e-0007-4a8b-9c1d-000000000007", "Evolution"),
    ),
    _g(
        "Crazy Time",
        "live",
        "96.08",
        None,
        hub88=("evo_crazy_time", "Evolution Gaming"),
        slotegrator=("6f1c9a2e-0008-4a8b-9c1d-000000000008", "Evolution"),
    ),
    # Hub88 only
    _g("Wolf Gold", "slots", "96.01", "medium", hub88=("pp_wolf_gold", "Pragmatic Play")),
    _g(
        "Big Bass Bonanza",
        "slots",
        "96.71",
        "high",
        hub88=("pp_big_bass_bonanza", "Pragmatic Play"),
    ),
    _g("Sugar Rush", "slots", "96.50", "high", hub88=("pp_sugar_rush", "Pragmatic Play")),
    _g(
        "Dead or Alive 2", "slots", "96.80", "very-high", hub88=("netent_dead_or_alive_2", "NetEnt")
    ),
    _g("Twin Spin", "slots", "96.55", "medium", hub88=("netent_twin_spin", "NetEnt")),
    _g("Reactoonz", "slots", "96.51", "medium-high", hub88=("png_reactoonz", "Play'n GO")),
    _g(
        "Fire Joker",
        "slots",
        "96.15",
        "medium",
        mobile=False,
        hub88=("png_fire_joker", "Play'n GO"),
    ),
    _g("Monopoly Live", "live", "96.23", None, hub88=("evo_monopoly_live", "Evolution Gaming")),
    _g(
        "Infinite Blackjack",
        "live",
        "99.47",
        None,
        hub88=("evo_infinite_blackjack", "Evolution Gaming"),
    ),
    _g("Aviator", "crash", "97.00", None, hub88=("spribe_aviator", "Spribe")),
    _g("Mines", "crash", "97.00", None, hub88=("spribe_mines", "Spribe")),
    _g("Elvis Frog in Vegas", "slots", "96.00", "medium", hub88=("bgaming_elvis_frog", "BGaming")),
    _g(
        "European Roulette",
        "table",
        "97.30",
        None,
        mobile=False,
        hub88=("netent_european_roulette", "NetEnt"),
    ),
    _g("Mega Moolah", "slots", None, "medium", hub88=("mg_mega_moolah", "Microgaming")),
    # Slotegrator only
    _g(
        "Wanted Dead or a Wild",
        "slots",
        "96.38",
        "very-high",
        slotegrator=("6f1c9a2e-0101-4a8b-9c1d-000000000101", "Hacksaw Gaming"),
    ),
    _g(
        "Chaos Crew",
        "slots",
        "96.30",
        "high",
        slotegrator=("6f1c9a2e-0102-4a8b-9c1d-000000000102", "Hacksaw Gaming"),
    ),
    _g(
        "Money Train 2",
        "slots",
        "96.40",
        "very-high",
        slotegrator=("6f1c9a2e-0103-4a8b-9c1d-000000000103", "Relax Gaming"),
    ),
    _g(
        "Jammin' Jars",
        "slots",
        "96.83",
        "medium-high",
        slotegrator=("6f1c9a2e-0104-4a8b-9c1d-000000000104", "Push Gaming"),
    ),
    _g(
        "Razor Shark",
        "slots",
        "96.70",
        "high",
        slotegrator=("6f1c9a2e-0105-4a8b-9c1d-000000000105", "Push Gaming"),
    ),
    _g(
        "Bonanza Megaways",
        "slots",
        "96.00",
        "high",
        slotegrator=("6f1c9a2e-0106-4a8b-9c1d-000000000106", "Big Time Gaming"),
    ),
    _g(
        "Extra Chilli",
        "slots",
        "96.82",
        "high",
        slotegrator=("6f1c9a2e-0107-4a8b-9c1d-000000000107", "Big Time Gaming"),
    ),
    _g(
        "Fruit Party",
        "slots",
        "96.47",
        "high",
        slotegrator=("6f1c9a2e-0108-4a8b-9c1d-000000000108", "PragmaticPlay"),
    ),
    _g(
        "Dream Catcher",
        "live",
        "96.58",
        None,
        slotegrator=("6f1c9a2e-0109-4a8b-9c1d-000000000109", "Evolution"),
    ),
    _g(
        "Spaceman",
        "crash",
        "96.50",
        None,
        slotegrator=("6f1c9a2e-0110-4a8b-9c1d-000000000110", "PragmaticPlay"),
    ),
    _g(
        "Blackjack Classic",
        "table",
        "99.50",
        None,
        mobile=False,
        slotegrator=("6f1c9a2e-0111-4a8b-9c1d-000000000111", "Netent"),
    ),
    _g(
        "Legacy of Dead",
        "slots",
        "96.58",
        "high",
        slotegrator=("6f1c9a2e-0112-4a8b-9c1d-000000000112", "Play n GO"),
    ),
)


def hub88_games() -> list[SimGame]:
    return [g for g in GAMES if g.hub88]


def slotegrator_games() -> list[SimGame]:
    return [g for g in GAMES if g.slotegrator]
