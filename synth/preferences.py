"""The preferences a user states in an episode (the CF block) and their effect on each candidate.

Users state 0-4 positive preferences (plus a brand 30% of the time), a negative one in ~25% and a
comparative one in ~22% of the episodes, drawn from a *target* item they like. Each preference
carries its wording, its ``preference_words`` annotations and its effect on the utility of every
candidate (``+W_POS`` per match, ``-W_NEG`` per negative match, ``-W_CMP`` per violated constraint).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.catalogue import Catalogue
from synth.model import W_CMP, W_NEG, W_POS, Dice, nice_threshold
from synth.world import Category, Dialogue, World

# slot codes of preferences that are not about an attribute
SLOT_BRAND, SLOT_PRICE_NEGATIVE, SLOT_PRICE_COMPARATIVE = -2, -3, -4


@dataclass
class Candidates:
    """The candidate set of one episode; index ``j`` is a position in the pool."""

    pool: np.ndarray  # item indices; the shop's own items first
    own: np.ndarray  # bool: item of the episode's catalogue (the staff only links those)
    vals: np.ndarray  # (P, slots) attribute value ids
    price: np.ndarray
    brand: np.ndarray  # global brand ids


@dataclass
class Preference:
    kind: str  # pos | neg | cmp | cheaper
    slot: int  # attribute slot or a SLOT_* code
    text: str
    annots: list
    effect: np.ndarray  # utility change of every candidate

    def render(self, d: Dice, T: Dialogue, last_linked: list[int], price: np.ndarray) -> tuple[str, list]:
        """Wording and annotations; "cheaper" is relative to the last linked item, known only when said."""
        if self.kind != "cheaper":
            return self.text, self.annots
        if last_linked:
            ref = float(price[last_linked[-1]])
            self.effect = -W_CMP * (price >= ref)
            t, a = d.pick(T.user_cheaper)
            return t, [{"text": a, "type": "comparative"}]
        thr = nice_threshold(float(np.median(price)))
        t, a = d.pick(T.user_price_limit)
        self.effect = -W_CMP * (price > thr)
        return t.format(x=thr), [{"text": a.format(x=thr), "type": "comparative"}]


def _negative(slot: int, template: list[str], word: str, effect: np.ndarray) -> Preference:
    t, a = template
    return Preference("neg", slot, t.format(w=word), [{"text": a.format(w=word), "type": "negative"}], effect)


class PreferenceDraw:
    """Draws an episode's preferences from the generator's random streams."""

    def __init__(self, world: World, catalogue: Catalogue, rng: np.random.Generator, dice: Dice):
        self.W, self.C, self.rng, self.d = world, catalogue, rng, dice
        self.T = world.data.dialogue
        self.families = world.data.colour_families

    def draw(self, cat: Category, cands: Candidates, target: int) -> list[Preference]:
        """Positive, negative and comparative preferences drawn from candidate ``target``, in random order."""
        rng = self.rng
        out: list[Preference] = []
        k_pos = int(rng.choice(5, p=[.06, .28, .34, .22, .10]))
        if self.d.bern(0.3):  # brand as a (descriptive) preference
            out.append(self._brand(cat, cands, target))
            k_pos = max(0, k_pos - 1)
        slots = list(cat.pref_slots)
        order = [slots[j] for j in rng.permutation(len(slots)).tolist()]
        for j in order[:k_pos]:
            if cands.vals[target, j] >= 0:
                out.append(self._positive(cat, cands, target, j))
        if self.d.bern(0.25):
            out.extend(self._negative(cat, cands, target))
        if self.d.bern(0.22):
            out.append(self._comparative(cat, cands, target))
        order = rng.permutation(len(out)).tolist()
        return [out[j] for j in order]

    def _brand(self, cat: Category, cands: Candidates, target: int) -> Preference:
        b = cat.spec.brands[int(self.C.item_brand_local[cands.pool[target]])].name
        m = (cands.brand == cands.brand[target]).astype(float)
        return Preference("pos", SLOT_BRAND, self.d.pick(self.T.user_brand).format(w=b),
                          [{"text": b, "type": "descriptive"}], W_POS * m)

    def _positive(self, cat: Category, cands: Candidates, target: int, j: int) -> Preference:
        """The target's value of slot ``j``: its colour family, a descriptive word covering it, or the value."""
        d, vals = self.d, cands.vals
        v = vals[target, j]
        if j == cat.colour_slot and cat.spec.colour_attribute == "颜色":
            fam = cat.val_fam[v]
            word = self.families[fam]
            m = (cat.val_fam[np.maximum(vals[:, j], 0)] == fam) & (vals[:, j] >= 0)
        else:
            descs = [(w, vs) for w, jj, vs in cat.desc if jj == j and v in vs]
            if descs and d.bern(0.6):
                word, vs = d.pick(descs)
                m = np.isin(vals[:, j], vs)
            else:
                word = cat.values[j][v]
                m = vals[:, j] == v
        return Preference("pos", j, d.pick(self.T.user_positive).format(w=word),
                          [{"text": word, "type": "descriptive"}], W_POS * m.astype(float))

    def _negative(self, cat: Category, cands: Candidates, target: int) -> list[Preference]:
        """别太贵, or rejecting a colour family / brand / value the target does not have (none if nothing to reject)."""
        d, T = self.d, self.T
        x = d.u()
        price, own, vals = cands.price, cands.own, cands.vals
        if x < 0.25:
            thr = float(np.median(price[own])) * 1.15
            if price[target] > thr:
                return []
            t, a = d.pick(T.user_not_too_expensive)
            return [Preference("neg", SLOT_PRICE_NEGATIVE, t, [{"text": a, "type": "negative"}], -W_NEG * (price > thr))]
        if x < 0.6 and cat.colour_slot >= 0:
            j = cat.colour_slot
        elif x < 0.8:
            j = SLOT_BRAND
        else:
            j = d.pick(cat.pref_slots)
        if j == SLOT_BRAND:
            brands = cands.brand
            cand = sorted(set(brands[own].tolist()) - {int(brands[target])})
            if not cand:
                return []
            bg = d.pick(cand)
            return [_negative(SLOT_BRAND, d.pick(T.user_negative), self.W.brands[bg], -W_NEG * (brands == bg))]
        if j == cat.colour_slot and cat.spec.colour_attribute == "颜色":
            fams = cat.val_fam[np.maximum(vals[:, j], 0)]
            cand = sorted(set(fams[own & (vals[:, j] >= 0)].tolist()) - {int(fams[target])})
            if not cand:
                return []
            f = d.pick(cand)
            return [_negative(j, d.pick(T.user_negative), self.families[f], -W_NEG * ((fams == f) & (vals[:, j] >= 0)))]
        col = vals[:, j]
        cand = sorted(set(col[own & (col >= 0)].tolist()) - {int(col[target])})
        if not cand:
            return []
        v = d.pick(cand)
        return [_negative(j, d.pick(T.user_negative), cat.values[j][v], -W_NEG * (col == v))]

    def _comparative(self, cat: Category, cands: Candidates, target: int) -> Preference:
        """An attribute threshold the target meets (大于200G), 便宜一点, or a price limit above the target's price."""
        d, T = self.d, self.T
        price, vals = cands.price, cands.vals
        x = d.u()
        ok_comp = [(ph, tpl, j, vs) for ph, tpl, j, vs in cat.comp if vals[target, j] in vs]
        if x < 0.25 and ok_comp:
            ph, tpl, j, vs = d.pick(ok_comp)
            return Preference("cmp", j, tpl.format(w=ph), [{"text": ph, "type": "comparative"}],
                              -W_CMP * (~np.isin(vals[:, j], vs)))
        if x < 0.45:
            return Preference("cheaper", SLOT_PRICE_COMPARATIVE, "", [], np.zeros(len(price)))
        thr = nice_threshold(float(price[target]) * (1.05 + 0.45 * d.u()))
        t, a = d.pick(T.user_price_limit)
        return Preference("cmp", SLOT_PRICE_COMPARATIVE, t.format(x=thr),
                          [{"text": a.format(x=thr), "type": "comparative"}], -W_CMP * (price > thr))
