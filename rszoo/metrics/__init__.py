"""Evaluation metrics.

* :mod:`rszoo.metrics.grounding` -- visual grounding: Acc@IoU, mIoU, cumIoU, Unique/Non-unique splits, a
  torchmetrics ``GroundingAccuracy`` and box plots; ``grounding`` is registered in :data:`rszoo.registry.METRICS`.

Submodules are imported on demand (the registry imports them on first lookup); nothing heavy is imported here.
"""
