"""Shops and their items: who sells which categories and brands, item attributes, prices and titles.

Shops sell 1-3 categories (brand flagship stores or multi-brand retailers); a (shop, category)
*catalogue* has 10-66 items. Items of a series (brand + 型号) share most attribute values; prices
come from the category base price, the brand tier and per-value price effects with log-normal noise.
Items are stored column-wise (``item_*`` arrays, one row per item).
"""
from __future__ import annotations

import numpy as np

from synth.model import SERIES_COLOUR_SHARE, SERIES_SHARE, Dice, nice_price, zipf
from synth.world import Category, World

MAX_SERIES = 16  # series ids are packed as brand * MAX_SERIES + series


class Catalogue:
    """All shops and items of one corpus; built by :meth:`build` from the generator's random streams."""

    def __init__(self, world: World, rng: np.random.Generator, dice: Dice):
        self.W, self.rng, self.d = world, rng, dice

    def build(self, n_catalogues: int) -> "Catalogue":
        self._make_shops(n_catalogues)
        self._make_items()
        self.cl_index = {(s, c): j for j, (s, c, _z) in enumerate(self.catalogues)}
        return self

    # -- shops -------------------------------------------------------------------------------------
    def _make_shops(self, n_catalogues: int) -> None:
        rng, W = self.rng, self.W
        n_shops = max(len(W.cats), int(round(n_catalogues / 1.85)))
        cats_of_shop: list[list[int]] = []
        brand_of_shop: list[int] = []  # -1 = multi-brand retailer
        for _s in range(n_shops):
            k = int(rng.choice([1, 2, 3], p=[0.4, 0.35, 0.25]))
            if rng.random() < 0.35:
                cats, brand = self._flagship_categories(k)
            else:
                cats, brand = self._retailer_categories(k), -1
            cats_of_shop.append(cats)
            brand_of_shop.append(brand)
        for c in range(len(W.cats)):  # every category has at least two catalogues
            for _ in range(2 - sum(c in cs for cs in cats_of_shop)):
                retailers = [s for s in range(n_shops) if brand_of_shop[s] < 0 and c not in cats_of_shop[s]]
                s = retailers[rng.integers(len(retailers))] if retailers else int(rng.integers(n_shops))
                if c not in cats_of_shop[s]:
                    cats_of_shop[s].append(c)
        ids = np.sort(rng.choice(np.arange(100000, 999999), size=n_shops, replace=False))
        self.shop_ids = [str(x) for x in rng.permutation(ids)]
        self.shop_cats = cats_of_shop
        self.shop_brand = brand_of_shop
        self.shop_names = self._shop_names()

    def _flagship_categories(self, k: int) -> tuple[list[int], int]:
        """A brand flagship store: a popular brand of a category, plus up to k-1 other categories of the brand."""
        rng, W = self.rng, self.W
        c0 = int(rng.choice(len(W.cats), p=W.cat_pop))
        cat = W.cats[c0]
        w = np.array([b.popularity for b in cat.spec.brands], float)
        gid = int(cat.brand_gid[rng.choice(len(w), p=w / w.sum())])
        others = [c.cid for c in W.cats if c.cid != c0 and gid in c.brand_gid]
        extra = list(rng.permutation(others)[: k - 1]) if others else []
        return [c0] + [int(x) for x in extra], gid

    def _retailer_categories(self, k: int) -> list[int]:
        """A multi-brand retailer: k categories, mostly of one group."""
        rng, W = self.rng, self.W
        c0 = int(rng.choice(len(W.cats), p=W.cat_pop))
        g = W.group_of_cat[c0]
        chosen = [c0]
        for _ in range(k - 1):
            same = rng.random() < 0.7
            pool = [c.cid for c in W.cats if c.cid not in chosen and (W.group_of_cat[c.cid] == g) == same]
            if not pool:
                pool = [c.cid for c in W.cats if c.cid not in chosen]
            chosen.append(int(pool[rng.integers(len(pool))]))
        return chosen

    def _shop_names(self) -> list[str]:
        rng, W = self.rng, self.W
        prefixes, suffix = W.data.shop_name_prefixes, W.data.shop_suffix_by_group
        names = []
        used: dict[str, int] = {}
        for s, brand in enumerate(self.shop_brand):
            if brand >= 0:
                base = f"{W.brands[brand]}官方旗舰店"
            else:
                base = prefixes[rng.integers(len(prefixes))] + suffix[W.cats[self.shop_cats[s][0]].spec.group]
            used[base] = used.get(base, 0) + 1
            names.append(base if used[base] == 1 else f"{base}{used[base]}号店")
        return names

    # -- items -------------------------------------------------------------------------------------
    def _make_items(self) -> None:
        rng, W = self.rng, self.W
        cat_rows: list[tuple[int, int, int]] = []  # (shop, category, size)
        for s, cs in enumerate(self.shop_cats):
            for c in cs:
                big = rng.random() < 0.85
                size = int(rng.integers(32, 67)) if big else int(rng.integers(10, 31))
                cat_rows.append((s, c, size))
        self.catalogues = cat_rows
        n = sum(r[2] for r in cat_rows)
        sizes = np.array([r[2] for r in cat_rows], np.int64)
        self.cat_size = sizes
        self.cat_start = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.item_cl = np.repeat(np.arange(len(cat_rows)), sizes).astype(np.int64)
        self.item_cat = np.repeat(np.array([r[1] for r in cat_rows], np.int64), sizes)
        self.item_shop = np.repeat(np.array([r[0] for r in cat_rows], np.int64), sizes)
        self.item_vals = np.full((n, W.n_slots), -1, np.int64)
        self.item_brand_local = np.zeros(n, np.int64)
        self.item_series = np.zeros(n, np.int64)
        self.item_price = np.zeros(n)
        self.item_fam = np.full(n, -1, np.int64)
        self.cat_median = np.zeros(len(W.cats))
        for cat in W.cats:
            idx = np.flatnonzero(self.item_cat == cat.cid)
            if len(idx):
                self._fill_category(cat, idx)
        self.n_items = n
        self.item_brand = np.array([W.cats[c].brand_gid[b] for c, b in zip(self.item_cat.tolist(),
                                                                           self.item_brand_local.tolist())],
                                   np.int64) if n else np.zeros(0, np.int64)
        self.item_has_kb = rng.random(n) >= 0.07
        self.price_null = rng.random(n) < 0.01
        gaps = rng.integers(1, 20000, size=n)
        ids = 100000000000 + np.cumsum(gaps)
        self.item_ids = [str(x) for x in rng.permutation(ids)]
        self.cat_items = [np.flatnonzero(self.item_cat == c.cid) for c in W.cats]
        self.item_titles = [self._title(i) for i in range(n)]

    def _fill_category(self, cat: Category, idx: np.ndarray) -> None:
        """Brands, series, attribute values and prices of the items ``idx`` of one category."""
        rng, sp = self.rng, cat.spec
        m = len(idx)
        bl = self._brands_of_items(cat, idx)
        self.item_brand_local[idx] = bl
        n_series = np.array([len(b.series) for b in sp.brands])
        series = np.floor(rng.random(m) * n_series[bl]).astype(np.int64)
        self.item_series[idx] = series
        logp = np.log(sp.base_price) + np.log(np.array([b.tier for b in sp.brands]))[bl]
        # a series (brand, model line) fixes most specs; variants differ in colour, memory ...
        skey = bl * MAX_SERIES + series
        for j, attr in enumerate(sp.attributes):
            v = self._attribute_values(cat, j, bl, skey)
            self.item_vals[idx, j] = v
            if attr.price_effects is not None:
                logp = logp + np.asarray(attr.price_effects)[v]
        logp = logp + rng.normal(0, sp.price_sigma, m)
        self.item_price[idx] = nice_price(np.exp(logp))
        if cat.colour_slot >= 0:
            self.item_fam[idx] = cat.val_fam[self.item_vals[idx, cat.colour_slot]]
        self.cat_median[cat.cid] = float(np.median(self.item_price[idx]))

    def _brands_of_items(self, cat: Category, idx: np.ndarray) -> np.ndarray:
        """Local brand of each item: a flagship's own brand; retailers carry 2-6 brands per catalogue."""
        rng = self.rng
        bw = np.array([b.popularity for b in cat.spec.brands], float)
        bl = np.empty(len(idx), np.int64)
        cl_of = self.item_cl[idx]
        for k in np.unique(cl_of):
            sel = cl_of == k
            s = self.catalogues[k][0]
            if self.shop_brand[s] >= 0 and self.shop_brand[s] in cat.brand_gid:
                bl[sel] = int(np.flatnonzero(cat.brand_gid == self.shop_brand[s])[0])
            else:
                kb = int(rng.integers(2, min(6, len(bw)) + 1))
                carried = rng.choice(len(bw), size=kb, replace=False, p=bw / bw.sum())
                pw = bw[carried] / bw[carried].sum()
                bl[sel] = carried[rng.choice(kb, size=int(sel.sum()), p=pw)]
        return bl

    def _attribute_values(self, cat: Category, j: int, bl: np.ndarray, skey: np.ndarray) -> np.ndarray:
        """Value ids of attribute slot ``j``: the series' value or the item's own (Zipf), brand rules applied."""
        rng, sp = self.rng, cat.spec
        attr = sp.attributes[j]
        values, m = attr.values, len(bl)
        p = zipf(len(values), attr.zipf_alpha)
        own = rng.choice(len(values), size=m, p=p)
        base = rng.choice(len(values), size=MAX_SERIES * len(sp.brands), p=p)[skey]
        keep = rng.random(m) < (SERIES_COLOUR_SHARE if j == cat.colour_slot else SERIES_SHARE)
        v = np.where(keep, base, own)
        exclusive = sp.exclusive_values.get(attr.name)
        if exclusive:  # brand-exclusive values (A17 Pro only in iPhones, ...)
            v = self._apply_exclusive(cat, exclusive, values, p, v, bl)
        for b, x in sp.forced_values.get(attr.name, {}).items():
            v = np.where(bl == cat.brands.index(b), values.index(x), v)
        return v

    def _apply_exclusive(self, cat: Category, exclusive: dict, values: list[str], p: np.ndarray, v: np.ndarray,
                         bl: np.ndarray) -> np.ndarray:
        """Items of other brands redraw a brand's exclusive values; the brand's items get one of them."""
        rng, m = self.rng, len(bl)
        vid = {x: k for k, x in enumerate(values)}
        owner = np.full(len(values), -1)
        for b, xs in exclusive.items():
            for x in xs:
                owner[vid[x]] = cat.brands.index(b)
        free = np.flatnonzero(owner < 0)
        fp = p[free] / p[free].sum()
        redraw = free[rng.choice(len(free), size=m, p=fp)]
        v = np.where((owner[v] >= 0) & (owner[v] != bl), redraw, v)
        for b, xs in exclusive.items():
            mine = np.array([vid[x] for x in xs])
            v = np.where(bl == cat.brands.index(b), mine[rng.integers(0, len(mine), m)], v)
        return v

    def _title(self, i: int) -> str:
        """JD-style title: brand, series, key values, marketing words (descriptive words the item matches first)."""
        d = self.d
        cat = self.W.cats[self.item_cat[i]]
        sp = cat.spec
        row = self.item_vals[i]
        fmt = {name: cat.values[j][row[j]] for j, name in enumerate(cat.slots)}
        fmt["品牌"], fmt["型号"] = self.brand_and_series(i)
        fmt["tail"] = d.pick(sp.title_tail)
        mk = [w for w, j, vs in cat.desc if row[j] in vs and d.bern(0.6)][:2]
        while len(mk) < 2 and d.bern(0.5):
            w = d.pick(sp.marketing_words)
            if w not in mk:
                mk.append(w)
        fmt["mk"] = " ".join(mk)
        return " ".join(sp.title.format_map(fmt).split())

    def brand_and_series(self, i: int) -> tuple[str, str]:
        brand = self.W.cats[self.item_cat[i]].spec.brands[int(self.item_brand_local[i])]
        return brand.name, brand.series[self.item_series[i]]

    def item_records(self) -> list[dict]:
        """``items.jsonl``."""
        W = self.W
        recs = []
        for i in range(self.n_items):
            cat = W.cats[self.item_cat[i]]
            attrs = {}
            if self.item_has_kb[i]:
                attrs["品牌"], attrs["型号"] = self.brand_and_series(i)
                row = self.item_vals[i]
                for j, name in enumerate(cat.slots):
                    attrs[name] = cat.values[j][row[j]]
            recs.append({"item_id": self.item_ids[i], "category": cat.spec.name,
                         "shop_id": self.shop_ids[self.item_shop[i]], "title": self.item_titles[i],
                         "price": None if self.price_null[i] else float(self.item_price[i]), "attributes": attrs})
        return recs
