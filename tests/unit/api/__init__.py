"""Unit tests of trafex.api: the adapter, the servicer, the typed client."""
