"""The purchase model's constants (see the ``synth.generate`` module doc), the corpus sizes and
the small numeric helpers the simulator's parts share."""
from __future__ import annotations

import numpy as np

GENERATOR_VERSION = 5  # bump on any change to the generated files (cache directories carry it)
N_CANDIDATES = 31  # the purchased item + at most 30 hard negatives
# purchase model; tuned on `default` so that the blocks rank IF > CF > BF
TAU = 0.3  # Gumbel noise scale of the purchase
W_PRICE = {"高": 1.8, "中": 1.2, "低": 0.7}  # |log(price / budget)| weight by latent price sensitivity
W_BRAND, W_COLOUR = 1.2, 0.8
W_POS, W_NEG, W_CMP = 0.7, 1.6, 1.3
W_MENTION, W_RECENT, W_SIM = 1.0, 0.6, 4.0
SERIES_SHARE, SERIES_COLOUR_SHARE = 0.65, 0.25  # chance that an item keeps its series' value of an attribute
STAFF_NOISE = 3.0  # Gumbel scale of the staff's choice of items to link
P_MENTION, MENTION_DECAY = 0.6, 0.8  # chance that a staff block links items, decaying per linking block

SCALES = {
    "tiny": dict(n_sessions=200, n_users=190, n_catalogues=40),
    # the main job: 3,000 sessions on the same 240 catalogues (titles to encode stay ~9.1k), so that
    # 0.57:0.1:0.33 gives >= 1,000 test requests and the old 8:1:1 training size (1,919 vs 1,821)
    "default": dict(n_sessions=3000, n_users=2880, n_catalogues=240),
    "full": dict(n_sessions=25440, n_users=24358, n_catalogues=2940),
}


class Dice:
    """Scalar random draws for the Python parts (text), from blocks of ``rng.random``."""

    __slots__ = ("rng", "buf", "pos")

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.buf: list[float] = []
        self.pos = 0

    def u(self) -> float:
        if self.pos >= len(self.buf):
            self.buf = self.rng.random(8192).tolist()
            self.pos = 0
        v = self.buf[self.pos]
        self.pos += 1
        return v

    def i(self, n: int) -> int:
        return min(int(self.u() * n), n - 1)

    def pick(self, seq):
        return seq[self.i(len(seq))]

    def bern(self, p: float) -> bool:
        return self.u() < p


def zipf(n: int, alpha: float) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** alpha
    return w / w.sum()


def nice_price(p: np.ndarray) -> np.ndarray:
    """Shop prices: 2999, 459, 89.9 ..."""
    out = np.where(p >= 1000, np.round(p / 100) * 100 - 1, np.where(p >= 100, np.round(p / 10) * 10 - 1,
                                                                     np.round(p) - 0.1))
    return np.maximum(out, 9.9)


def nice_threshold(x: float) -> int:
    """A round price a user would say (3000以内)."""
    if x >= 2000:
        return int(round(x / 500) * 500)
    if x >= 200:
        return int(round(x / 100) * 100)
    return int(max(50, round(x / 10) * 10))


def mean_overlap(kb: np.ndarray, linked: np.ndarray) -> np.ndarray:
    """Per candidate, the mean share of equal KB columns (-1 = missing) with the other linked candidates."""
    m = np.flatnonzero(linked)
    P = len(kb)
    if not len(m):
        return np.zeros(P)
    valid = kb >= 0
    eq = (kb[:, None, :] == kb[None, m, :]) & valid[:, None, :]
    sim = eq.sum(2) / np.maximum(valid.sum(1), 1)[:, None]  # (P, |M|)
    self_mask = np.arange(P)[:, None] == m[None, :]
    sim = np.where(self_mask, 0.0, sim)
    cnt = len(m) - self_mask.sum(1)
    return np.where(cnt > 0, sim.sum(1) / np.maximum(cnt, 1), 0.0)
