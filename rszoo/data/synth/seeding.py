"""Deterministic hashing and seeded random streams (one job: turn integers into repeatable randomness).

Everything in the synthetic world is a pure function of integers (world seed, lattice indices, scene seed), so the
same inputs give the same scene on every machine and in every process. Python's ``hash`` is salted per process and
``random.seed(str)`` depends on the interpreter, so we use an explicit 64-bit SplitMix mixer instead.

Example:
    >>> mix(1, 2) == mix(1, 2) != mix(2, 1)
    True
    >>> 0.0 <= unit(7, 3) < 1.0
    True
    >>> stream(5, "roads").random() == stream(5, "roads").random()
    True
"""

from __future__ import annotations

import random
import zlib
from functools import lru_cache

import numpy as np

__all__ = [
    "LightRandom",
    "hash_grid",
    "light",
    "light_draws",
    "mix",
    "mix_array",
    "mix_on",
    "prefix",
    "salt",
    "stream",
    "unit",
    "unit_of",
    "unit_on",
]

_MASK = (1 << 64) - 1
_UNIT = 1.0 / (1 << 53)  # 53 random bits -> [0, 1)
_SALTS: dict[str, int] = {}


def salt(name: str) -> int:
    """A stable 32-bit integer for a string label (CRC32; identical across processes and platforms)."""
    value = _SALTS.get(name)
    if value is None:
        value = _SALTS[name] = zlib.crc32(name.encode("utf-8"))
    return value


def _fmix(h: int) -> int:
    # MurmurHash3's 64-bit finaliser: full avalanche in a few integer operations
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & _MASK
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & _MASK
    return h ^ (h >> 33)


def mix(*parts: int | str) -> int:
    """Combine integers (and string labels) into one well-mixed 64-bit integer (FNV-style fold + Murmur finaliser)."""
    # hot (called per grid line, block and segment): constants are bound as locals, _fmix and the lookup of known
    # salts are inlined
    mask = _MASK
    h = 0x2545F4914F6CDD1D
    for part in parts:
        if type(part) is not int:
            if isinstance(part, str):
                known = _SALTS.get(part)
                part = salt(part) if known is None else known
            else:
                part = int(part)
        h = (((h ^ (part & mask)) * 0x100000001B3) & mask) ^ (h >> 29)
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & mask
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & mask
    return h ^ (h >> 33)


@lru_cache(maxsize=8192)
def prefix(*parts: int | str) -> int:
    """The state of :func:`mix` after folding in ``parts``: ``mix_on(prefix(*a), *b) == mix(*a, *b)`` for
    integer parts ``b`` (cached, so a hash over a grid of indices folds its seed and label once).

    Example:
        >>> mix_on(prefix(7, "block"), 3, -4) == mix(7, "block", 3, -4)
        True
    """
    mask = _MASK
    h = 0x2545F4914F6CDD1D
    for part in parts:
        part = salt(part) if isinstance(part, str) else int(part)
        h = (((h ^ (part & mask)) * 0x100000001B3) & mask) ^ (h >> 29)
    return h


def unit_of(mixed: int) -> float:
    """The :func:`unit` value of a :func:`mix` value: ``unit_of(mix(*parts)) == unit(*parts)``."""
    return (mixed >> 11) * _UNIT


def mix_on(state: int, *parts: int) -> int:
    """:func:`mix` continued from a :func:`prefix` state with integer parts."""
    mask = _MASK
    h = state
    for part in parts:
        # mix's ``part & mask`` is left out: the low 64 bits of the product depend only on those of ``h ^ part``
        h = (((h ^ part) * 0x100000001B3) & mask) ^ (h >> 29)
    return _fmix(h)


def unit_on(state: int, *parts: int) -> float:
    """:func:`unit` continued from a :func:`prefix` state with integer parts."""
    return (mix_on(state, *parts) >> 11) * _UNIT


def mix_array(states: np.ndarray, *parts: np.ndarray) -> np.ndarray:
    """:func:`mix_on` element by element: ``uint64`` :func:`prefix` states continued with integer arrays (all
    broadcast together).

    The same 64-bit arithmetic in numpy's wrapping ``uint64`` operations, so each value equals :func:`mix_on` of the
    corresponding scalars. Worth it from about five values on: one Python-level hash costs about as much as three
    small-array operations, and this takes a dozen.

    Example:
        >>> states = np.array([prefix(3, "x")], dtype=np.uint64)
        >>> mix_array(states, np.array([-1, 0, 5])).tolist() == [mix(3, "x", k) for k in (-1, 0, 5)]
        True
    """
    h = states
    for part in parts:
        # int64 -> uint64 wraps negative values to two's complement, as ``part & mask`` does
        folded = part.astype(np.uint64) ^ h
        folded *= _FNV_PRIME
        folded ^= h >> _S29
        h = folded
    return _fmix_array(h.copy() if h is states else h)  # (a fresh array: _fmix_array works in place)


_FNV_PRIME = np.uint64(0x100000001B3)
_MURMUR_1, _MURMUR_2 = np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53)
_S11, _S29, _S33 = np.uint64(11), np.uint64(29), np.uint64(33)


def _fmix_array(h: np.ndarray) -> np.ndarray:
    """:func:`_fmix` of each value of a ``uint64`` array (overwritten)."""
    h ^= h >> _S33
    h *= _MURMUR_1
    h ^= h >> _S33
    h *= _MURMUR_2
    h ^= h >> _S33
    return h


def unit(*parts: int | str) -> float:
    """A float in ``[0, 1)`` that depends only on ``parts``."""
    return (mix(*parts) >> 11) * _UNIT


class LightRandom:
    """A tiny SplitMix64 generator: cheap to create (unlike ``random.Random``, whose seeding costs ~17 us).

    Used for the many short-lived streams of world-level parameters (one per grid line, block, river band).
    """

    __slots__ = ("_state",)

    def __init__(self, seed: int) -> None:
        self._state = seed & _MASK

    def random(self) -> float:
        """Next float in ``[0, 1)``."""
        self._state = h = (self._state + 0x9E3779B97F4A7C15) & _MASK
        # _fmix inlined (hot)
        h ^= h >> 33
        h = (h * 0xFF51AFD7ED558CCD) & _MASK
        h ^= h >> 33
        h = (h * 0xC4CEB9FE1A85EC53) & _MASK
        return ((h ^ (h >> 33)) >> 11) * _UNIT

    def uniform(self, a: float, b: float) -> float:
        # random() inlined (hot: most draws of the world's parameters are uniform)
        self._state = h = (self._state + 0x9E3779B97F4A7C15) & _MASK
        h ^= h >> 33
        h = (h * 0xFF51AFD7ED558CCD) & _MASK
        h ^= h >> 33
        h = (h * 0xC4CEB9FE1A85EC53) & _MASK
        return a + (b - a) * (((h ^ (h >> 33)) >> 11) * _UNIT)

    def randrange(self, n: int) -> int:
        return min(int(self.random() * n), n - 1)


def light_draws(seeds: np.ndarray, count: int) -> np.ndarray:
    """The first ``count`` :meth:`LightRandom.random` values of one generator per seed, as rows.

    ``seeds`` is a 1-d ``uint64`` array (e.g. from :func:`mix_array`); row ``k`` holds exactly the values that
    ``LightRandom(seeds[k])`` would give.

    Example:
        >>> rows = light_draws(mix_array(np.array([prefix(1)], dtype=np.uint64), np.array([4, 5])), 3)
        >>> rng = light(1, 5)
        >>> rows[1].tolist() == [rng.random() for _ in range(3)]
        True
    """
    # the k-th state is seed + k * gamma (mod 2**64), then the Murmur finaliser
    h = _fmix_array(seeds[:, None] + _gamma_steps(count))
    h >>= _S11
    return h.astype(np.float64) * _UNIT


@lru_cache(maxsize=16)
def _gamma_steps(count: int) -> np.ndarray:
    """``[1, 2, ..., count] * gamma`` modulo 2**64, the state increments of :class:`LightRandom`."""
    steps = np.array([(k * 0x9E3779B97F4A7C15) & _MASK for k in range(1, count + 1)], dtype=np.uint64)
    steps.flags.writeable = False
    return steps


def light(*parts: int | str) -> LightRandom:
    """A :class:`LightRandom` seeded from ``parts``."""
    return LightRandom(mix(*parts))


def stream(*parts: int | str) -> random.Random:
    """A :class:`random.Random` seeded from ``parts`` (Mersenne Twister; its output is fixed across versions).

    Creation costs ~17 us, so use it for long streams (one per scene); use :func:`light` for short ones.
    """
    return random.Random(mix(*parts))


def hash_grid(seed: int, ix: np.ndarray, iy: np.ndarray) -> np.ndarray:
    """Vectorised :func:`unit`-like hash of integer lattice coordinates; returns float64 in ``[0, 1)``.

    Used for value-noise lattices (clouds) where thousands of lattice points are hashed at once.
    """
    with np.errstate(over="ignore"):
        x = np.asarray(ix, dtype=np.int64).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        x ^= np.asarray(iy, dtype=np.int64).astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
        x ^= np.uint64(mix(seed))
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
