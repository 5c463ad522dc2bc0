"""Bitrix24: the REST client, batching, the shared rate limit, OAuth, delivery and the sandbox.

See docs/decisions/0003-bitrix24-client.md for why this is our own client and why ``crm.item.*``.
"""
