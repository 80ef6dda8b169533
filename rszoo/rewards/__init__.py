"""Rewards for GRPO-style reinforcement fine-tuning.

* :mod:`rszoo.rewards.functional` -- pure box functions (IoU, GIoU, DIoU, centre distance, RSGround-R1's R_pos and
  spatial-consistency weight), NumPy and torch.
* :mod:`rszoo.rewards.grounding` -- reward modules with trl's reward-function signature, registered in
  :data:`rszoo.registry.REWARDS` (``format``, ``iou``, ``giou``, ``diou``, ``center_distance``, ``positional``),
  and :class:`~rszoo.rewards.grounding.WeightedRewards`.

Nothing heavy is imported here; import the submodules directly.
"""
