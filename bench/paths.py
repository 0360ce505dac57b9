"""Where the benchmark's things are: the harness's files in the repository, and what the
upstream nginx serves (the paths, ids and catalogs the rows ask for)."""

from __future__ import annotations

from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
FIXTURES = BENCH / "upstream"
NGINX_TEMPLATE = FIXTURES / "nginx.conf.template"
GATEWAY_TEMPLATE = BENCH / "gateway.yaml"

INTENT_PATH = "/v1/payment_intents/pi_bench"
# The catalogs nginx serves gzipped (gzip_static) to a client that accepts it.
GZIPPED_FIXTURES = ("hub88_game_list.json", "slotegrator_games.json")
GAME_ID = "pragmatic-play:sweet-bonanza"  # sold by both aggregators: two offers to merge
# Row G's launch: a real-money session, as a casino frontend sends it.
LAUNCH_BODY = (
    b'{"player_id":"player-42","currency":"EUR","mode":"real","platform":"desktop",'
    b'"language":"en","country":"DE","session_token":"sess-bench",'
    b'"return_url":"https://casino.example/lobby"}'
)
