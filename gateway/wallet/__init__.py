"""The seamless wallet: aggregators' wallet callbacks in, one wallet API to the casino out.

`gateway.http.wallet` answers `POST /wallet/{provider}` in each provider's own words
(adapters parse and render); `service` settles a callback through the ledger
(`gateway.ledger.wallet`) and the casino backend (`backend`, whose docstring is the
backend's contract); `export` totals a day for reconciliation.
"""
