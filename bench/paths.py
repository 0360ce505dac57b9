"""Where the benchmark's things are: the harness's files in the repository, and what the
upstream nginx serves and the gateway is sent (the paths, ids, catalogs and the deposit the
rows ask for)."""

from __future__ import annotations

import json
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
FIXTURES = BENCH / "upstream"
NGINX_TEMPLATE = FIXTURES / "nginx.conf.template"
GATEWAY_TEMPLATE = BENCH / "gateway.yaml"
# wrk's script for rows G, P and Q: POST a JSON body (P, Q: a new Idempotency-Key each time).
POST_SCRIPT = BENCH / "post_json.lua"
# wrk's script for row W: Hub88 bets signed before the run (bench/hub88_bets.py).
BETS_SCRIPT = BENCH / "hub88_bets.lua"

INTENT_PATH = "/v1/payment_intents/pi_bench"
INTENT_ID = "pi_bench"  # what nginx answers for a create and a read-back alike
INTENT_STATUS = "processing"  # not settled: the gateway reads it from Stripe every time
# The catalogs nginx serves gzipped (gzip_static) to a client that accepts it.
GZIPPED_FIXTURES = ("hub88_game_list.json", "slotegrator_games.json")
GAME_ID = "pragmatic-play:sweet-bonanza"  # sold by both aggregators: two offers to merge

PAYMENTS_PATH = "/v1/payments"
# The deposit rows E, P and Q create; amount and currency match the fixture intent, as the
# gateway checks on every read-back. bench/post_json.lua sends the same bytes.
DEPOSIT = {
    "type": "deposit",
    "amount": 2500,
    "currency": "EUR",
    "player_id": "player-1",
    "method": {"type": "card"},
    "return_url": "https://casino.example/r",
}
DEPOSIT_BODY = json.dumps(DEPOSIT, separators=(",", ":"))
# Row G's launch: a real-money session, as a casino frontend sends it.
LAUNCH_BODY = (
    '{"player_id":"player-42","currency":"EUR","mode":"real","platform":"desktop",'
    '"language":"en","country":"DE","session_token":"sess-bench",'
    '"return_url":"https://casino.example/lobby"}'
)
