"""The async Gooten client's public path: it lives in :mod:`gooten_provider.client.async_client`."""

from gooten_provider.client.async_client import AsyncGootenClient

__all__ = ["AsyncGootenClient"]
