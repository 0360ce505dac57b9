"""The durable ledger of money state: SQLite embedded by default, PostgreSQL for several hosts."""
