"""``trafex enforce``: FlowSpec rules received over BGP, enforced by Linux nftables.

:mod:`~trafex.enforce.match` and :mod:`~trafex.enforce.compile` are pure: rules in, one
nftables JSON transaction out, so every decision can be tested without a kernel.
:mod:`~trafex.enforce.nftables` is the only module that runs ``nft``.
"""
