"""casino-gateway: one API for casino frontends over game aggregators and payment providers."""

__version__ = "0.1.0"
