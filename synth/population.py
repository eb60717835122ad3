"""Users: latent tastes, the 20 E-ConvRec profile fields that show them noisily, and behaviour logs.

Latent tastes: a budget multiplier tied to ``avg_pay_monthly``, a price sensitivity, a favourite
brand per category group and a favourite colour family (see the ``synth.generate`` module doc).
"""
from __future__ import annotations

import numpy as np

from core.corpus import BEHAVIOR_TYPES, PROFILE_FIELDS
from synth.catalogue import Catalogue
from synth.model import W_BRAND, W_COLOUR, W_PRICE, Dice, zipf
from synth.world import World

# P(favourite colour family) for men (row 0) and women (row 1), in world.json's colour_families order
FAV_FAMILY_P = np.array([[.22, .18, .1, .1, .04, .14, .06, .02, .06, .04, .02, .02],
                         [.12, .2, .08, .04, .08, .08, .12, .14, .04, .06, .02, .02]])
N_BEHAVIOR_CANDIDATES = 8  # items a behaviour picks from (by the taste utility)


class Population:
    """The users of one corpus, column-wise; :meth:`draw` draws them from the generator's streams."""

    def __init__(self, world: World, rng: np.random.Generator, dice: Dice):
        self.W, self.rng, self.d = world, rng, dice
        self.vocab = world.data.profile

    def draw(self, n: int) -> "Population":
        rng, W = self.rng, self.W
        self.n_users = n
        sex = np.where(rng.random(n) < 0.52, "女", "男")
        age = rng.choice(len(self.vocab.ages), size=n, p=[.25, .38, .2, .11, .06])
        city = rng.choice(len(self.vocab.city_levels), size=n, p=[.18, .22, .22, .2, .18])
        logpay = np.log(1500) + 0.25 * (2 - city) * 0.5 + np.array([-.5, .1, .25, .15, -.2])[age] + rng.normal(0, .75, n)
        pay = np.round(np.clip(np.exp(logpay), 20, 60000), 1)
        self.budget = np.exp(0.5 * (np.log(pay) - np.log(1500)) + rng.normal(0, 0.25, n))
        self.sens = rng.choice(3, size=n, p=[.35, .4, .25])  # index into high_medium_low (高 中 低)
        n_groups = len(W.data.category_groups)
        self.fav_brand = np.zeros((n, n_groups), np.int64)
        for g in range(n_groups):
            w = W.group_brand_w[g]
            self.fav_brand[:, g] = rng.choice(len(w), size=n, p=w / w.sum())
        n_fam = len(W.data.colour_families)
        self.fav_fam = np.array([rng.choice(n_fam, p=FAV_FAMILY_P[int(s == "女")]) for s in sex.tolist()])
        self.u_sex, self.u_age, self.u_city, self.u_pay = sex, age, city, pay
        self.u_misc = self._draw_profile_fields(age, pay)
        self.user_ids = self._draw_ids(n)
        return self

    def _draw_profile_fields(self, age: np.ndarray, pay: np.ndarray) -> dict:
        """The profile fields that carry no taste (and the interests, which pick session categories)."""
        rng, W, n = self.rng, self.W, self.n_users
        q = np.quantile(np.log(pay), [.35, .7, .9])
        pw_idx = np.searchsorted(q, np.log(pay) + rng.normal(0, .3, n))
        lvl = np.clip(np.searchsorted(np.quantile(pay, [.3, .55, .75, .9, .97]), pay) + rng.integers(-1, 2, n), 0, 5)
        married = np.where(age == 0, rng.random(n) < .12, rng.random(n) < .72)
        children = married & (rng.random(n) < .7)
        edu = rng.choice(4, size=n, p=[.2, .3, .4, .1])
        prof = np.where((age == 0) & (rng.random(n) < .5), 0,
                        np.where((age == 4) & (rng.random(n) < .6), 8, rng.choice([1, 2, 3, 4, 5, 6, 7, 9], size=n)))
        prov = rng.choice(len(self.vocab.provinces), size=n, p=zipf(len(self.vocab.provinces), 0.7))
        self.interest = np.stack([rng.choice(len(W.cats), size=n, p=W.cat_pop) for _ in range(3)], 1)
        return dict(pw=pw_idx, lvl=lvl, married=married, children=children, edu=edu, prof=prof, prov=prov,
                    promo=rng.choice(3, size=n), hours=rng.choice(4, size=n, p=[.15, .25, .45, .15]),
                    dev=np.where(rng.random(n) < np.clip(.25 + .1 * np.log(pay / 1500), .05, .7), 1,
                                 rng.choice([0, 2], size=n, p=[.85, .15])),
                    freq=rng.choice(3, size=n, p=[.3, .45, .25]),
                    years=np.clip(np.round(rng.gamma(2, 2.2, n)) * (age > 0) + rng.integers(0, 3, n), 0, 18))

    def _draw_ids(self, n: int) -> list[str]:
        rng = self.rng
        chars = np.array(list("abcdefghijklmnopqrstuvwxyz0123456789"))
        ids: list[str] = []
        seen: set[str] = set()
        while len(ids) < n:
            block = chars[rng.integers(0, len(chars), size=(n - len(ids), 10))]
            for r in block:
                s = "".join(r.tolist())
                if s not in seen:
                    seen.add(s)
                    ids.append(s)
        return ids

    # -- utility -----------------------------------------------------------------------------------
    def profile_fit(self, u: int, c: int, cat: Catalogue, idx: np.ndarray) -> np.ndarray:
        """BF of items ``idx`` of category ``c`` for user ``u``: price gap to the budget, brand, colour."""
        W = self.W
        a = W_PRICE[self.vocab.high_medium_low[self.sens[u]]]
        b = cat.cat_median[c] * self.budget[u]
        out = -a * np.abs(np.log(cat.item_price[idx] / b))
        out += W_BRAND * (cat.item_brand[idx] == self.fav_brand[u, W.group_of_cat[c]])
        out += W_COLOUR * (cat.item_fam[idx] == self.fav_fam[u])
        return out

    # -- records -----------------------------------------------------------------------------------
    def profile_records(self, first_cat: np.ndarray) -> list[dict]:
        """``users.jsonl``: ~1.4% empty profiles, ~4% missing fields, tastes shown noisily."""
        rng, W = self.rng, self.W
        n = self.n_users
        empty = rng.random(n) < 0.014
        miss = rng.random((n, 20)) < 0.04
        bp_choice = rng.random(n)
        other_g = rng.integers(0, len(W.data.category_groups), n)
        rand_b = rng.integers(0, len(W.brands), n)
        sens_field = np.where(rng.random(n) < 0.8, self.sens, rng.integers(0, 3, n))
        col_field = np.where(rng.random(n) < 0.75, self.fav_fam, rng.integers(0, 12, n))
        recs = []
        for u in range(n):
            if empty[u]:
                recs.append({"user_id": self.user_ids[u], "profile": {}})
                continue
            g = W.group_of_cat[first_cat[u]]
            bp = self.fav_brand[u, g] if bp_choice[u] < .6 else (
                self.fav_brand[u, other_g[u]] if bp_choice[u] < .85 else rand_b[u])
            vals = self._profile_values(u, first_cat[u], W.brands[bp], sens_field[u], col_field[u])
            prof = {k: v for j, (k, v) in enumerate(zip(PROFILE_FIELDS, vals)) if not miss[u, j]}
            recs.append({"user_id": self.user_ids[u], "profile": prof})
        return recs

    def _profile_values(self, u: int, first_cat: int, brand: str, sens: int, colour: int) -> list:
        """The 20 profile values of user ``u`` in ``PROFILE_FIELDS`` order."""
        d, W, V, m = self.d, self.W, self.vocab, self.u_misc
        top3 = []
        if d.bern(0.5):
            top3.append(W.cats[first_cat].spec.name)
        while len(top3) < 3:
            x = W.cats[self.interest[u, d.i(3)]].spec.name if d.bern(0.3) else d.pick(V.everyday_interests)
            if x not in top3:
                top3.append(x)
        if d.bern(0.5):
            top3 = top3[1:] + top3[:1]
        return [V.member_levels[m["lvl"][u]], str(self.u_sex[u]), V.ages[self.u_age[u]],
                "已婚" if m["married"][u] else ("未婚" if d.bern(.92) else "未知"), V.education[m["edu"][u]],
                V.professions[m["prof"][u]], "是" if m["children"][u] else "否", V.city_levels[self.u_city[u]],
                V.provinces[m["prov"][u]], brand, float(self.u_pay[u]), V.purchasing_power[m["pw"][u]], top3,
                V.high_medium_low[sens], V.high_medium_low[m["promo"][u]], W.data.colour_families[colour],
                float(m["years"][u]), V.active_hours[m["hours"][u]], V.devices[m["dev"][u]],
                V.frequencies[m["freq"][u]]]

    def behavior_records(self, cat: Catalogue, first_cat: np.ndarray, session_user: np.ndarray,
                         session_ts: np.ndarray) -> list[dict]:
        """``behaviors.jsonl``: click / cart / favorite / purchase before the user's first session,
        items picked by the same taste utility as BF (plus Gumbel(0, 1))."""
        rng, W = self.rng, self.W
        nu = self.n_users
        n_b = np.where(rng.random(nu) < 0.05, 0, 1 + rng.poisson(7, nu))
        uu = np.repeat(np.arange(nu), n_b)
        nb = len(uu)
        cats = np.where(rng.random(nb) < 0.5, first_cat[uu], self.interest[uu, rng.integers(0, 3, nb)])
        K = N_BEHAVIOR_CANDIDATES
        cands = np.empty((nb, K), np.int64)
        for c in range(len(W.cats)):
            sel = np.flatnonzero(cats == c)
            items = cat.cat_items[c]
            cands[sel] = items[rng.integers(0, len(items), size=(len(sel), K))]
        a = np.array([W_PRICE[x] for x in self.vocab.high_medium_low])[self.sens[uu]]
        b = cat.cat_median[cats] * self.budget[uu]
        util = -a[:, None] * np.abs(np.log(cat.item_price[cands] / b[:, None]))
        util += W_BRAND * (cat.item_brand[cands] == self.fav_brand[uu, W.group_of_cat[cats]][:, None])
        util += W_COLOUR * (cat.item_fam[cands] == self.fav_fam[uu][:, None])
        util += rng.gumbel(0, 1.0, util.shape)
        pick = cands[np.arange(nb), np.argmax(util, 1)]
        types = rng.choice(4, size=nb, p=[.62, .15, .1, .13])
        first_ts = np.full(nu, np.iinfo(np.int64).max)
        np.minimum.at(first_ts, session_user, session_ts)
        ts = first_ts[uu] - 60 - np.round(rng.exponential(25 * 86400, nb)).astype(np.int64)
        order = np.lexsort((ts, uu))
        return [{"user_id": self.user_ids[x], "type": BEHAVIOR_TYPES[t], "item_id": cat.item_ids[i], "ts": int(s)}
                for x, t, i, s in zip(uu[order].tolist(), types[order].tolist(), pick[order].tolist(),
                                      ts[order].tolist())]
