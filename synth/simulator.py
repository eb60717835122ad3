"""The simulation run: shops and items, users, sessions of 1-2 purchase episodes, profiles, behaviours.

Everything is drawn from one ``np.random.default_rng(seed)`` (and a :class:`~synth.model.Dice` on
it for the text), in a fixed order, so a seed gives byte-identical files. Do not reorder draws
without bumping ``GENERATOR_VERSION``.
"""
from __future__ import annotations

import numpy as np

from synth.catalogue import Catalogue
from synth.episode import Episode
from synth.model import N_CANDIDATES, SCALES, Dice
from synth.population import Population
from synth.preferences import PreferenceDraw
from synth.world import World


class Simulator:
    def __init__(self, scale: str, seed: int):
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {sorted(SCALES)}, not {scale!r}")
        self.scale, self.seed, self.cfg = scale, seed, SCALES[scale]
        self.rng = np.random.default_rng(seed)
        self.d = Dice(self.rng)
        self.W = World()

    def run(self) -> dict[str, list[dict]]:
        """The records of each ``<name>.jsonl``; the truth rows are left in ``self.truth``."""
        self.C = Catalogue(self.W, self.rng, self.d).build(self.cfg["n_catalogues"])
        self.P = Population(self.W, self.rng, self.d).draw(self.cfg["n_users"])
        self.preferences = PreferenceDraw(self.W, self.C, self.rng, self.d)
        self._make_sessions()
        return {
            "users": self.P.profile_records(self.first_cat),
            "items": self.C.item_records(),
            "sessions": self.sessions_out,
            "behaviors": self.P.behavior_records(self.C, self.first_cat, self.session_user, self.session_ts),
            "samples": self.samples_out,
        }

    def _make_sessions(self) -> None:
        """Who talks to which catalogue when, for how many exchanges; then every session's turns."""
        rng, W, C = self.rng, self.W, self.C
        n = self.cfg["n_sessions"]
        nu = self.P.n_users
        interest = self.P.interest
        users = np.concatenate([rng.permutation(nu), rng.integers(0, nu, max(0, n - nu))])[:n]
        users = users[rng.permutation(n)]
        cat_choice = np.where(rng.random(n) < 0.7, interest[users, rng.integers(0, 3, n)],
                              rng.choice(len(W.cats), size=n, p=W.cat_pop))
        # exchanges: log-normal (mode ~7, mean ~11) with a 1% long tail up to 100
        ex = np.clip(np.round(np.exp(rng.normal(np.log(9.5), 0.55, n))), 2, 100).astype(int)
        tail = rng.random(n) < 0.01
        ex[tail] = rng.integers(30, 101, int(tail.sum()))
        self.session_ts = rng.integers(1609430400, 1640966400, n)  # 2021
        second = (rng.random(n) < 0.13) & (ex >= 6)
        cats_by = [np.flatnonzero(np.array([c == k for (_s, c, _z) in C.catalogues])) for k in range(len(W.cats))]
        self.sessions_out: list[dict] = []
        self.samples_out: list[dict] = []
        self.truth: list[tuple] = []
        # the category of a user's first session decides which brand brand_preference shows
        first_cat = np.full(nu, -1)
        for si in np.argsort(self.session_ts, kind="stable").tolist():
            u = users[si]
            if first_cat[u] < 0:
                first_cat[u] = cat_choice[si]
        self.first_cat = np.where(first_cat < 0, interest[:, 0], first_cat)
        self.session_user = users
        for si in range(n):
            cl = cats_by[int(cat_choice[si])]
            k = int(cl[rng.choice(len(cl), p=C.cat_size[cl] / C.cat_size[cl].sum())])
            self._session(si, int(users[si]), k, int(ex[si]), bool(second[si]))

    def _session(self, si: int, u: int, k: int, n_ex: int, second: bool) -> None:
        """Session ``si`` of user ``u`` in catalogue ``k``: one episode, or two (the second often in
        another category of the same shop)."""
        C, d = self.C, self.d
        sid = f"s{si + 1:06d}"
        shop, c, _size = C.catalogues[k]
        turns: list[dict] = []
        episodes = [n_ex]
        if second:
            a = max(3, int(round(n_ex * 0.55)))
            episodes = [a, max(3, n_ex - a)]
        exclude: set[int] = set()  # items bought in this session
        linked: set[int] = set()  # items linked so far in the session (context of later episodes)
        for e, n_exchanges in enumerate(episodes):
            kk = k
            if e > 0:
                cats = [x for x in C.shop_cats[shop] if x != c]
                c2 = d.pick(cats) if cats and d.bern(0.7) else c
                kk = C.cl_index.get((shop, c2), k)
            Episode(self, sid, f"{sid}_{e + 1}", u, kk, n_exchanges, turns, e, exclude, linked).run()
        self.sessions_out.append({"session_id": sid, "user_id": self.P.user_ids[u], "shop_id": C.shop_ids[shop],
                                  "turns": turns})

    def candidate_pool(self, k: int, exclude: set[int]) -> tuple[np.ndarray, int]:
        """The purchased item's competitors: up to ``N_CANDIDATES`` items of catalogue ``k`` (its own
        items first), filled from other shops of the category when the catalogue is small; ~5% of the
        samples get 15-30. Returns the pool and the number of own items."""
        rng, C = self.rng, self.C
        s, c, size = C.catalogues[k]
        own = C.cat_start[k] + np.arange(size)
        if exclude:
            own = own[~np.isin(own, list(exclude))]
        target = N_CANDIDATES if rng.random() >= 0.05 else int(rng.integers(15, 31))
        if len(own) >= target:
            pool = rng.choice(own, size=target, replace=False)
            return pool, target
        others = C.cat_items[c]
        others = others[(C.item_cl[others] != k)]
        if exclude:
            others = others[~np.isin(others, list(exclude))]
        fill = rng.choice(others, size=min(len(others), target - len(own)), replace=False)
        return np.concatenate([own, fill]), len(own)
