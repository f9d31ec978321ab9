"""scsp: an OCPI 2.2.1 Smart Charging Service Provider (the service: HTTP, SQLite, clock, CLI)."""

__version__ = "0.1.0"
