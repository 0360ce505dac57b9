"""The ledger fixtures of test_ledger, for every test module of this folder."""

from tests.unit.gateway.ledger.test_ledger import clock, ledger, ledger_settings  # noqa: F401
