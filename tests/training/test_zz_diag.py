import itertools, torch
import tests.training.test_grpo_parity as T
from tests.training.test_grpo_parity import world, _single_thread  # noqa


def test_diag(world, tmp_path):
    worst_g, worst_l = 0.0, 0.0
    for lt, beta, it in itertools.product(["grpo", "bnpo", "dr_grpo", "dapo"], [0.0, 0.04], [1, 2]):
        s = dict(loss_type=lt, beta=beta, epsilon=0.1, epsilon_high=0.3, num_iterations=it)
        (l1, g1), (l2, g2) = T._ours(world, **s), T._trl(world, tmp_path, **s)
        worst_l = max(worst_l, abs(float(l1 - l2)))
        worst_g = max(worst_g, max(float((g1[n] - g2[n]).abs().max() / g2[n].abs().max()) for n in g1))
    print("WORST loss abs", worst_l, "grad rel-to-max", worst_g)
