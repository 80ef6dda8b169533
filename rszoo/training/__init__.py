"""Training: the base LightningModule, shared stages (chat SFT, GRPO), data, resumption, sharding and planning.

Modules import Lightning and torch; nothing here is imported by ``import rszoo``.
"""
