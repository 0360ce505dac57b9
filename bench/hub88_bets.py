"""Row W's requests: Hub88 bet callbacks, each signed with Hub88's key and with a transaction
id of its own, as Hub88 sends them to an operator's wallet.

Signing (RSA-2048, about 0.2 ms a body) is done before the load starts, never during it:
the load generator must not take the CPU the gateway is measured with. One file per wrk run
(warm-up and each attempt), so no id is ever sent twice; bench/hub88_bets.lua and
bench/paced.py send the lines in order. A line is `signature<TAB>body`.
"""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

BET_PATH = "/wallet/hub88/transaction/bet"
BACKEND_DEBIT_PATH = "/wallet/debit"  # what nginx answers as the casino backend
# More bets than a run could send at this rate: a wrk run that used them all would send
# replays, answered from the ledger (a cheaper path), and fails its row instead.
MAX_RATE = 2500


def bet_body(transaction: str, request: str) -> bytes:
    return json.dumps(
        {
            "user": "player-1",
            "transaction_uuid": transaction,
            "supplier_transaction_id": transaction,
            "token": "sess-bench",
            "round": f"round-{transaction}",
            "round_closed": False,
            "request_uuid": request,
            "game_code": "pp_sweet_bonanza",
            "currency": "EUR",
            "amount": 100000,
            "is_free": False,
            "meta": {},
        },
        separators=(",", ":"),
    ).encode()


def write_bets(folder: Path, private_pem: str, count: int) -> Path:
    """`count` signed bets, unique ids under a new prefix, in a new file of `folder`."""
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    prefix = secrets.token_hex(6)
    path = folder / f"bets-{prefix}.tsv"
    with path.open("w") as out:
        for i in range(count):
            body = bet_body(f"{prefix}-{i}", f"{prefix}-r{i}")
            signature = key.sign(body, padding.PKCS1v15(), hashes.SHA256())
            out.write(f"{base64.b64encode(signature).decode()}\t{body.decode()}\n")
    return path
