"""The `wallet` block of providers.yaml: the casino backend the wallet callbacks go to.

```yaml
wallet:
  backend_url: http://127.0.0.1:9200/wallet     # POST {backend_url}/balance|debit|credit|rollback
  secret_env: WALLET_SIGNING_SECRET             # signs every call (X-Gateway-Signature)
  timeout_ms: 2000                              # one backend call; past it the outcome is unknown
```

Without the block no wallet route answers anything but "not configured". What the gateway
does with it is `gateway.wallet`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_TIMEOUT_MS = 2000


@dataclass(frozen=True, slots=True)
class WalletSettings:
    backend_url: str  # without a trailing slash
    secret: str = field(repr=False)
    timeout_ms: int = DEFAULT_TIMEOUT_MS
