"""The simulator's world: ``world.json`` (package data) turned into the structures the simulator uses.

``world.json`` holds the data (categories with their brands, attribute schemas, descriptive and
comparative words, title formats; profile vocabularies; shop names; dialogue wordings).
:func:`world_data` parses it once; :class:`World` compiles it into index form (attribute slots,
value ids, brand ids, colour families) for one simulation run.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources

import numpy as np


@dataclass(frozen=True)
class Brand:
    name: str
    tier: float  # price multiplier
    popularity: float
    series: list[str]  # model lines (型号)


@dataclass(frozen=True)
class Attribute:
    name: str
    values: list[str]  # in Zipf order: the first value is the most common
    price_effects: list[float] | None  # log price effect of each value
    zipf_alpha: float


@dataclass(frozen=True)
class CategorySpec:
    """One category as written in ``world.json``."""

    name: str
    words: list[str]  # category words used in dialogues (first = canonical)
    group: str
    base_price: float  # typical price
    price_sigma: float  # log-normal price noise
    popularity: float  # share of sessions
    brands: list[Brand]
    attributes: list[Attribute]
    title: str  # format string over attribute names, 品牌, 型号, {tail}, {mk}
    title_tail: list[str]
    descriptive_words: list[dict]  # {word, attribute, values}: 拍照清晰 -> 后摄主像素 in {...}
    comparatives: list[dict]  # {phrase, template with {w}, attribute, values that satisfy it}
    marketing_words: list[str]
    colour_attribute: str | None  # None: the category has no colour
    preference_attributes: list[str]  # attributes users talk about
    exclusive_values: dict  # attribute -> {brand: values only that brand has}
    forced_values: dict  # attribute -> {brand: the value all its items have}

    @classmethod
    def from_json(cls, d: dict) -> "CategorySpec":
        return cls(**{**d, "brands": [Brand(**b) for b in d["brands"]],
                      "attributes": [Attribute(**a) for a in d["attributes"]]})


@dataclass(frozen=True)
class Profile:
    """Vocabularies of the user profile fields."""

    ages: list[str]
    member_levels: list[str]
    purchasing_power: list[str]
    education: list[str]
    professions: list[str]
    city_levels: list[str]
    provinces: list[str]
    high_medium_low: list[str]  # 高 中 低: price sensitivity and promotion sensitivity
    active_hours: list[str]
    devices: list[str]
    frequencies: list[str]
    everyday_interests: list[str]


@dataclass(frozen=True)
class Dialogue:
    """Utterance wordings; ``{c}`` category word, ``{w}`` preference word, ``{a}`` attribute, ``{v}``
    value, ``{x}`` price. Pairs are ``[utterance, preference-word annotation]`` or ``[question, answer]``."""

    staff_acknowledge: list[str]
    staff_answer_attribute: list[str]
    staff_ask_attribute: list[str]
    staff_ask_budget: list[str]
    staff_before_recommendation: list[str]
    staff_greeting: list[str]
    staff_link: list[str]
    staff_names: list[str]
    staff_recommend: list[str]
    staff_tail: list[str]
    staff_thanks: list[str]
    user_ask_attribute: list[str]
    user_ask_recommendation: list[str]
    user_brand: list[str]
    user_buy: list[str]
    user_cheaper: list[list[str]]
    user_confirm: list[str]
    user_dont_care: list[str]
    user_feedback_negative: list[str]
    user_feedback_neutral: list[str]
    user_feedback_positive: list[str]
    user_greeting: list[str]
    user_head: list[str]
    user_negative: list[list[str]]
    user_not_too_expensive: list[list[str]]
    user_positive: list[str]
    user_price_limit: list[list[str]]
    user_question_staff_answer: list[list[str]]
    user_request: list[str]
    user_request_again: list[str]


@dataclass(frozen=True)
class WorldData:
    colour_families: list[str]
    colour_family_of: dict[str, str]  # colour value (雅川青) -> family (绿色)
    category_groups: list[str]
    categories: list[CategorySpec]
    profile: Profile
    shop_name_prefixes: list[str]
    shop_suffix_by_group: dict[str, str]
    dialogue: Dialogue


@functools.lru_cache(maxsize=1)
def world_data() -> WorldData:
    """``world.json``, parsed (once per process)."""
    raw = json.loads(resources.files(__package__).joinpath("world.json").read_text(encoding="utf-8"))
    return WorldData(
        colour_families=raw["colour_families"], colour_family_of=raw["colour_family_of"],
        category_groups=raw["category_groups"],
        categories=[CategorySpec.from_json(c) for c in raw["categories"]], profile=Profile(**raw["profile"]),
        shop_name_prefixes=raw["shop_names"]["prefixes"], shop_suffix_by_group=raw["shop_names"]["suffix_by_group"],
        dialogue=Dialogue(**raw["dialogue"]))


@dataclass
class Category:
    """A category in index form: attribute slots, value ids and colour families as arrays."""

    cid: int
    spec: CategorySpec
    brands: list[str]
    brand_gid: np.ndarray  # local brand -> global brand id
    slots: list[str]  # attribute names of the value matrix columns
    values: list[list[str]]
    colour_slot: int  # -1 when the category has no colour
    val_fam: np.ndarray  # colour value id -> family id
    desc: list[tuple[str, int, np.ndarray]]  # descriptive word, slot, value ids
    comp: list[tuple[str, str, int, np.ndarray]]  # phrase, template, slot, value ids that satisfy it
    pref_slots: list[int]


def _slot(spec: CategorySpec, slots: list[str], attribute: str, where: str) -> int:
    if attribute not in slots:
        raise ValueError(f"world.json: categories[{spec.name}].{where}: {attribute!r} is not an attribute of the "
                         f"category ({', '.join(slots)})")
    return slots.index(attribute)


def _value_ids(spec: CategorySpec, slots: list[str], values: list[list[str]], attribute: str, names: list[str],
               where: str) -> np.ndarray:
    """Ids of the values ``names`` of ``attribute``; a clear error names the entry of world.json that is wrong."""
    own = values[_slot(spec, slots, attribute, where)]
    for x in names:
        if x not in own:
            raise ValueError(f"world.json: categories[{spec.name}].{where}: {x!r} is not a value of {attribute}")
    return np.array([own.index(x) for x in names])


class World:
    """The categories and brands of :func:`world_data` with global brand ids and popularity weights."""

    def __init__(self, data: WorldData | None = None):
        self.data = data = data or world_data()
        self.cats: list[Category] = []
        self.brands: list[str] = []
        fam_id = {f: i for i, f in enumerate(data.colour_families)}
        bid: dict[str, int] = {}
        for cid, sp in enumerate(data.categories):
            names = [b.name for b in sp.brands]
            for b in names:
                if b not in bid:
                    bid[b] = len(self.brands)
                    self.brands.append(b)
            slots = [a.name for a in sp.attributes]
            values = [list(a.values) for a in sp.attributes]
            cs = _slot(sp, slots, sp.colour_attribute, "colour_attribute") if sp.colour_attribute else -1
            fam = np.full(max(len(v) for v in values), -1, np.int64)
            if cs >= 0:
                for k, v in enumerate(values[cs]):
                    if data.colour_family_of.get(v) not in fam_id:
                        raise ValueError(f"world.json: colour_family_of: colour {v!r} of {sp.name} has no colour family")
                    fam[k] = fam_id[data.colour_family_of[v]]
            desc = [(w["word"], slots.index(w["attribute"]),
                     _value_ids(sp, slots, values, w["attribute"], w["values"], f"descriptive_words[{w['word']}]"))
                    for w in sp.descriptive_words]
            comp = [(c["phrase"], c["template"], slots.index(c["attribute"]),
                     _value_ids(sp, slots, values, c["attribute"], c["values"], f"comparatives[{c['phrase']}]"))
                    for c in sp.comparatives]
            pref_slots = [_slot(sp, slots, a, "preference_attributes") for a in sp.preference_attributes]
            self.cats.append(Category(cid, sp, names, np.array([bid[b] for b in names]), slots, values, cs, fam,
                                      desc, comp, pref_slots))
        self.n_slots = max(len(c.slots) for c in self.cats)
        groups = data.category_groups
        self.group_of_cat = np.array([groups.index(c.spec.group) for c in self.cats])
        # global brand popularity within each group
        self.group_brand_w = np.zeros((len(groups), len(self.brands)))
        for c in self.cats:
            g = groups.index(c.spec.group)
            for b, gid in zip(c.spec.brands, c.brand_gid):
                self.group_brand_w[g, gid] += b.popularity
        self.cat_pop = np.array([c.spec.popularity for c in self.cats])
        self.cat_pop = self.cat_pop / self.cat_pop.sum()
