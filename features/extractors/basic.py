"""Basic features (BF): user profile, item attributes, category/shop, price and numeric stats.

E-ConvRec section 4.3: 14 of the 20 profile fields, the 30 most frequent knowledge-base
attributes with at most 500 values each (the rest map to the OOV id), plus price.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from features.frames import column_values, id_positions, key_values, numeric_frame, row_codes
from features.registry import KindParams, OutputColumn, register

# The 14 profile fields kept for ranking (E-ConvRec keeps 14 of 20). Left out: province (too
# sparse for ~25k users), active_hours, device_type, city_level (weakly related to purchase
# choice), promotion_sensitivity and membership_years (duplicate user_level / purchasing_power).
DEFAULT_PROFILE_FIELDS = [
    "user_level", "sex", "age", "marital_status", "education", "profession", "has_children",
    "brand_preference", "avg_pay_monthly", "purchasing_power", "top3_categories_recent",
    "price_sensitivity", "preferred_color", "shopping_frequency",
]


def _as_category_strings(values: pd.Series) -> pd.Series:
    """Profile/attribute values as strings; lists joined (order-free); missing stays None."""

    def conv(v):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return None
        if isinstance(v, (list, tuple, np.ndarray)):
            return "|".join(sorted(map(str, v))) if len(v) else None
        return str(v)

    return values.map(conv)


# -- user profile ------------------------------------------------------------------------------------
class UserProfileParams(KindParams):
    fields: list[str] = Field(default_factory=lambda: list(DEFAULT_PROFILE_FIELDS))
    numeric_bins: int = 8  # numeric profile fields are cut at training-user quantiles


def _fit_user_profile(ctx, p: UserProfileParams) -> dict:
    users = ctx.corpus.users
    train_users = ctx.corpus.samples.loc[ctx.corpus.samples["split"] == "train", "user_id"].unique()
    edges = {}
    for f in p.fields:
        if f in users.columns:
            if pd.api.types.is_numeric_dtype(users[f]) and not pd.api.types.is_bool_dtype(users[f]):
                col = users.loc[users["user_id"].isin(train_users), f].astype(float)
                if col.dropna().empty:
                    continue
                qs = np.unique(np.nanquantile(col.dropna(), np.linspace(0, 1, p.numeric_bins + 1)[1:-1]))
                edges[f] = [float(q) for q in qs]
    return {"numeric_edges": edges}


def _profile_key(field: str) -> str:
    return field


@register(
    "user_profile",
    params=UserProfileParams,
    outputs=lambda p, s: [OutputColumn(_profile_key(f), "categorical") for f in p.fields],
    fit=_fit_user_profile,
)
def user_profile(rows: pd.DataFrame, ctx, p: UserProfileParams, state: dict) -> pd.DataFrame:
    """User profile fields as categorical features (numeric fields bucketised at training quantiles)."""
    users = ctx.corpus.users.set_index("user_id")
    out = {}
    for f in p.fields:
        col = users[f] if f in users.columns else pd.Series(None, index=users.index, dtype=object)
        edges = state["numeric_edges"].get(f)
        if edges is not None:
            num = pd.to_numeric(col, errors="coerce")
            b = np.searchsorted(np.asarray(edges), num.to_numpy(), side="right")
            col = pd.Series(np.where(num.isna(), None, "b" + pd.Series(b, index=num.index).astype(str)), index=num.index)
        else:
            col = _as_category_strings(col)
        out[_profile_key(f)] = rows["user_id"].map(col).to_numpy()
    return pd.DataFrame(out, index=rows.index)


# -- item fields ------------------------------------------------------------------------------------
class ItemFieldParams(KindParams):
    field: Literal["category", "shop_id", "item_id"]


@register("item_field", params=ItemFieldParams, outputs=[OutputColumn("", "categorical")])
def item_field(rows: pd.DataFrame, ctx, p: ItemFieldParams, state: dict) -> pd.DataFrame:
    """One column of the item table (category, shop_id or item_id) as a categorical feature."""
    if p.field == "item_id":
        vals = rows["item_id"].astype(str)
    else:
        vals = rows["item_id"].map(ctx.corpus.items.set_index("item_id")[p.field])
    return pd.DataFrame({"": vals.to_numpy()}, index=rows.index)


class ItemAttributesParams(KindParams):
    top_k: int = 30  # attributes kept, by number of items that have them
    max_vocab: int = 500  # values kept per attribute (the most frequent in training rows)


def _fit_item_attributes(ctx, p: ItemAttributesParams) -> dict:
    counts = ctx.corpus.item_attrs.groupby("name", sort=False)["item_id"].nunique()
    # Most frequent first; ties by name so the choice is deterministic.
    order = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return {"attributes": [name for name, _ in order[: p.top_k]]}


@register(
    "item_attributes",
    params=ItemAttributesParams,
    # Keys are ASCII (TensorFlow input names); the state maps attrNN back to the KB name.
    outputs=lambda p, s: [OutputColumn(f"attr{i:02d}", "categorical") for i in range(len(s["attributes"]))],
    fit=_fit_item_attributes,
)
def item_attributes(rows: pd.DataFrame, ctx, p: ItemAttributesParams, state: dict) -> pd.DataFrame:
    """The top-k most frequent knowledge-base attributes of the candidate, one categorical column each."""
    names = state["attributes"]
    attrs = ctx.corpus.item_attrs
    attrs = attrs[attrs["name"].isin(names) & attrs["item_id"].isin(rows["item_id"].unique())]
    wide = attrs.drop_duplicates(["item_id", "name"]).pivot(index="item_id", columns="name", values="value")
    out = {}
    for i, name in enumerate(names):
        col = wide[name] if name in wide.columns else pd.Series(dtype=object)
        out[f"attr{i:02d}"] = rows["item_id"].map(col).to_numpy(dtype=object)
    return pd.DataFrame(out, index=rows.index)


# -- price --------------------------------------------------------------------------------------------
class PriceParams(KindParams):
    transform: Literal["none", "log1p", "standard", "minmax"] = "log1p"
    budget_field: str = "avg_pay_monthly"


def row_prices(rows: pd.DataFrame, ctx) -> np.ndarray:
    """Price of each row's candidate (NaN for an item without a record): each distinct candidate
    looked up once, memoised for the latest ``rows`` object of the context (``price`` and
    ``price_constraint`` of a call share it)."""
    slot = ctx.memo("bf.row_prices", dict)
    if slot.get("rows") is not rows:
        codes = row_codes(rows, ctx)
        at = id_positions(ctx.column("items", "item_id"), codes.items)
        slot.update(rows=rows, prices=_gather(column_values(ctx.corpus.items, "price", float), at)[codes.item])
    return slot["prices"]


def _numbers(values: np.ndarray) -> np.ndarray:
    """``values`` as floats, as ``pd.to_numeric(errors="coerce")`` reads them (floats as they are)."""
    return values.astype(float) if values.dtype.kind == "f" else pd.to_numeric(values, errors="coerce").astype(float)


def _gather(values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """``values[at]`` as floats, NaN where ``at`` is -1 (not found)."""
    out = values[np.maximum(at, 0)].astype(float) if len(values) else np.full(len(at), np.nan)
    out[at < 0] = np.nan
    return out


@register(
    "price",
    params=PriceParams,
    outputs=[OutputColumn("", "numeric"), OutputColumn("to_budget", "numeric")],
)
def price(rows: pd.DataFrame, ctx, p: PriceParams, state: dict) -> pd.DataFrame:
    """Candidate price, and its ratio to the user's monthly spend (log of the ratio)."""
    users = ctx.corpus.users
    price = row_prices(rows, ctx)
    if p.budget_field in users.columns:
        budget = _numbers(column_values(users, p.budget_field))
        budget = _gather(budget, id_positions(ctx.column("users", "user_id"), key_values(rows, "user_id")))
    else:
        budget = np.full(len(rows), np.nan)
    ratio = np.log((price + 1.0) / (np.maximum(budget, 0) + 1.0))
    return numeric_frame({"": price, "to_budget": ratio}, rows.index)


# -- behaviour statistics ----------------------------------------------------------------------------------
BEHAVIOR_TYPES = ("click", "cart", "favorite", "purchase")


class CountParams(KindParams):
    transform: Literal["none", "log1p", "standard", "minmax"] = "log1p"


def _fit_item_popularity(ctx, p: CountParams) -> dict:
    """Counts are fitted once on the training corpus's logs and frozen, like a feature store:
    a scoring request only carries its own user's history, not everybody's."""
    b = ctx.corpus.behaviors

    def build(d):
        counts = b.groupby(["item_id", "type"]).size().unstack(fill_value=0)
        counts = counts.reindex(columns=list(BEHAVIOR_TYPES), fill_value=0).reset_index()
        counts.to_parquet(d / "counts.parquet", index=False)

    rel = ctx.resource_dir("item_popularity", {"corpus": ctx.corpus.fingerprint()}, build)
    return {"counts": f"{rel}/counts.parquet"}


def _read_counts(path):
    return pd.read_parquet(path).set_index("item_id")


@register(
    "item_popularity",
    params=CountParams,
    outputs=[OutputColumn(t, "numeric") for t in BEHAVIOR_TYPES],
    fit=_fit_item_popularity,
)
def item_popularity(rows: pd.DataFrame, ctx, p: CountParams, state: dict) -> pd.DataFrame:
    """How often the candidate was clicked, carted, favourited and bought in the behaviour logs."""
    counts = ctx.load_resource(state["counts"], _read_counts)
    return pd.DataFrame(
        {t: rows["item_id"].map(counts[t]).fillna(0).to_numpy(dtype=float) for t in BEHAVIOR_TYPES},
        index=rows.index,
    )
