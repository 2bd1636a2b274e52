"""The engine every model runs on: the chunked passes over rows, the `while_loop` driver and restart
selection, distances, seeding, compiled programs (and their cache on disk), collectives over devices,
sharding, progress, and the checks at the public boundary.

k-means' Hamerly bounds (`bounds.py`) are the one hard-assignment fast path that stays outside the
family protocol: exact Lloyd iterations that skip settled rows need per-row bounds no mixture has.

Imports point one way: engine modules import nothing from `models`, `capabilities` or `tools`.
"""
