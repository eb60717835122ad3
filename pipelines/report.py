"""Run reports: metrics tables (E-ConvRec Table 8 layout), CSV/JSON, and PNG plots."""
from __future__ import annotations

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from core.bootstrap import METRICS, N_BOOT, RequestBootstrap, ci95, paired_difference  # noqa: E402
from core.io import atomic_file, atomic_path, write_json  # noqa: E402
from pipelines.rundir import RunDir  # noqa: E402

COLUMNS = ["auc", "logloss", "top@1", "top@5", "top@10", "mrr", "ndcg@10", "train_s"]
PCT = ["auc", "top@1", "top@5", "top@10", "mrr", "ndcg@10"]
DIFF_METRICS = ["auc", "top@1", "mrr", "ndcg@10"]  # the differences table's columns


# -- aggregation over seeds and the request bootstrap --------------------------------------------------------
def _pair_key(r: dict) -> tuple[str, str]:
    return r["model"], r["feature_set"]


def summarise(run: RunDir, results: list[dict], first_seed: int, n_boot: int = N_BOOT) -> tuple[list[dict], dict]:
    """One row per (model, feature set): every metric as the mean over training seeds, its 95%
    request-bootstrap interval (``<metric>_ci95``), its spread over seeds (``<metric>_seed_sd``)
    and ``per_seed`` values; plus ``model -> metric -> (B,)`` replicates of the seed means (all
    pairs resampled with the same requests, so differences are paired)."""
    by_pair: dict[tuple[str, str], list[dict]] = {}
    for r in results:
        by_pair.setdefault(_pair_key(r), []).append(r)
    boot, reference, reps = None, None, {}
    for key, runs in by_pair.items():
        per_seed_scores = []
        for r in runs:
            path = run.predictions(*key, None if r["seed"] == first_seed else r["seed"])
            if not path.exists():
                continue
            p = pd.read_parquet(path)
            if boot is None:
                reference = p[["sample_id", "item_id"]]
                boot = RequestBootstrap(p["label"].to_numpy(), p["sample_id"].to_numpy(), n_boot=n_boot, seed=0)
            elif not p[["sample_id", "item_id"]].equals(reference):
                p = reference.merge(p, on=["sample_id", "item_id"], how="left", validate="one_to_one")
                if p["score"].isna().any():
                    raise ValueError(f"{path}: test rows differ from the other pairs' (cannot pair the bootstrap)")
            per_seed_scores.append(p["score"].to_numpy())
        if per_seed_scores:
            reps[key] = boot.replicates(np.stack(per_seed_scores))  # replicates of the mean over seeds
    rows = []
    for key, runs in by_pair.items():
        row = {"model": key[0], "feature_set": key[1], "seeds": [r["seed"] for r in runs],
               "n_seeds": len(runs)}
        for k in [*METRICS, "train_s", "n_rows", "n_groups", "n_groups_without_positive", "n_fields",
                  "score_rows_per_s"]:
            vals = [r[k] for r in runs if r.get(k) is not None]
            if not vals:
                continue
            row[k] = float(np.mean(vals)) if len(vals) > 1 else vals[0]
            if k in METRICS:
                row[f"{k}_ci95"] = ci95(reps[key][k]) if key in reps else [float("nan")] * 2
                row[f"{k}_seed_sd"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
        row["per_seed"] = [{"seed": r["seed"], **{m: r.get(m) for m in [*METRICS, "train_s"]}} for r in runs]
        row["history"] = runs[0].get("history", {})
        row["val_auc_by_seed"] = [r.get("history", {}).get("val_auc", []) for r in runs]
        rows.append(row)
    return rows, reps


def comparisons(rows: list[dict], groups_of) -> list[tuple[tuple[str, str], tuple[str, str], str]]:
    """``(a, b, why)`` pairs to difference: each ablation step against the set one group smaller
    (same model), K-DCN against DCN, every other pair against LR (on the same feature set when LR
    ran on it, else on its largest one)."""
    keys = [_pair_key(r) for r in rows]
    out = []
    for a in keys:
        for b in keys:
            ga, gb = groups_of(a[1]), groups_of(b[1])
            if a[0] == b[0] and gb < ga and len(ga - gb) == 1:
                out.append((a, b, "ablation step"))
    for a in [k for k in keys if k[0] == "kdcn"]:
        for b in [k for k in keys if k[0] == "dcn" and k[1] == a[1]]:
            out.append((a, b, "K-DCN vs DCN"))
    lr = [k for k in keys if k[0] == "lr"]
    for a in [k for k in keys if k[0] != "lr"] if lr else []:
        # LR on the same feature set, else the LR with the most feature groups
        same = [k for k in lr if k[1] == a[1]]
        out.append((a, same[0] if same else max(lr, key=lambda k: len(groups_of(k[1]))), "vs LR"))
    return out


def differences(rows: list[dict], reps: dict, groups_of) -> list[dict]:
    """Paired bootstrap difference (``a - b``) of every metric for each of :func:`comparisons`."""
    by_key = {_pair_key(r): r for r in rows}
    out = []
    for a, b, why in comparisons(rows, groups_of):
        if a not in reps or b not in reps:
            continue
        d = {"a": list(a), "b": list(b), "why": why}
        for m in METRICS:
            d[m] = paired_difference(by_key[a][m], by_key[b][m], reps[a][m], reps[b][m])
            sa = {s["seed"]: s[m] for s in by_key[a]["per_seed"]}
            d[m]["per_seed"] = [sa[s["seed"]] - s[m] for s in by_key[b]["per_seed"] if s["seed"] in sa]
        out.append(d)
    return out


def metrics_frame(rows: list[dict]) -> pd.DataFrame:
    """Flat table for ``metrics.csv``: values, ``<metric>_ci95_low/high``, ``<metric>_seed_sd``."""
    flat = []
    for r in rows:
        f = {k: r.get(k) for k in ["model", "feature_set", "n_seeds", *COLUMNS]}
        for m in METRICS:
            lo, hi = r.get(f"{m}_ci95", [np.nan, np.nan])
            f.update({f"{m}_ci95_low": lo, f"{m}_ci95_high": hi, f"{m}_seed_sd": r.get(f"{m}_seed_sd")})
        flat.append(f)
    return pd.DataFrame(flat)


# -- markdown --------------------------------------------------------------------------------------------------
def _cell(r: dict, m: str) -> str:
    scale, fmt = (1, "{:.4f}") if m == "logloss" else (100, "{:.1f}")
    lo, hi = r.get(f"{m}_ci95", [np.nan, np.nan])
    sd = f" ±{fmt.format(scale * r[f'{m}_seed_sd'])}" if r.get("n_seeds", 1) > 1 else ""
    return f"{fmt.format(scale * r[m])}{sd} [{fmt.format(scale * lo)}, {fmt.format(scale * hi)}]"


def table8(rows: list[dict]) -> str:
    """Markdown table laid out like E-ConvRec Table 8 (percentages; model named once per block);
    each cell ``value [95% interval]``, with ``±sd over seeds`` when several seeds ran."""
    head = "| Model | Feature | AUC | Logloss | T@1 | T@5 | T@10 | MRR | NDCG@10 | Train s |"
    lines = [head, "|" + "---|" * 10]
    last = None
    for r in rows:
        name = r["model"] if r["model"] != last else ""
        last = r["model"]
        cells = [_cell(r, m) for m in ["auc", "logloss", "top@1", "top@5", "top@10", "mrr", "ndcg@10"]]
        lines.append(f"| {name} | {r['feature_set']} | " + " | ".join(cells) + f" | {r['train_s']:.1f} |")
    return "\n".join(lines)


def differences_table(diffs: list[dict], n_seeds: int) -> str:
    """Markdown: each comparison's paired difference ``value [95% interval]`` in points (x100)."""
    head = "| Comparison | Why | " + " | ".join(f"Δ{m.upper() if m == 'auc' else m}" for m in DIFF_METRICS)
    head += " | P(Δ AUC ≤ 0) |" + (" ΔAUC per seed |" if n_seeds > 1 else "")
    lines = [head, "|" + "---|" * (3 + len(DIFF_METRICS) + (n_seeds > 1))]
    for d in diffs:
        a, b = d["a"], d["b"]
        name = f"{a[0]} {a[1]} − {b[0]} {b[1]}" if a[0] != b[0] else f"{a[0]}: {a[1]} − {b[1]}"
        cells = []
        for m in DIFF_METRICS:
            x = d[m]
            sig = "**" if x["low"] > 0 or x["high"] < 0 else ""
            cells.append(f"{sig}{100 * x['diff']:+.1f} [{100 * x['low']:+.1f}, {100 * x['high']:+.1f}]{sig}")
        line = f"| {name} | {d['why']} | " + " | ".join(cells) + f" | {d['auc']['p_not_better']:.3f} |"
        if n_seeds > 1:
            line += " " + ", ".join(f"{100 * v:+.1f}" for v in d["auc"]["per_seed"]) + " |"
        lines.append(line)
    return "\n".join(lines)


# -- plots -------------------------------------------------------------------------------------------------------
def plot_ablation(rows: list[dict], path: Path) -> None:
    """Test AUC per (model, feature set); error bars: 95% request-bootstrap interval."""
    fig, ax = plt.subplots(figsize=(9, 4))
    models = list(dict.fromkeys(r["model"] for r in rows))
    sets = list(dict.fromkeys(r["feature_set"] for r in rows))
    by_key = {_pair_key(r): r for r in rows}
    w = 0.8 / max(len(sets), 1)
    lows, highs = [], []
    for j, fs in enumerate(sets):
        got = [by_key.get((m, fs)) for m in models]
        vals = np.array([r["auc"] if r else np.nan for r in got])
        ci = np.array([r.get("auc_ci95", [np.nan] * 2) if r else [np.nan] * 2 for r in got], dtype=float)
        err = np.nan_to_num(np.abs(ci - vals[:, None]).T)
        x = np.arange(len(models)) + j * w
        ok = np.isfinite(vals)
        ax.bar(x[ok], vals[ok], w, yerr=err[:, ok], capsize=2, label=fs)
        lows += list(ci[ok, 0]) + list(vals[ok])
        highs += list(ci[ok, 1]) + list(vals[ok])
    ax.set_xticks(np.arange(len(models)) + w * (len(sets) - 1) / 2, models)
    lo, hi = np.nanmin(lows), np.nanmax(highs)
    ax.set_ylim(max(0.0, lo - 0.03), min(1.0, hi + 0.02))
    ax.set_ylabel("test AUC (95% interval)")
    n_seeds = max(r.get("n_seeds", 1) for r in rows)
    ax.set_title("Feature-set ablation" + (f" (mean of {n_seeds} seeds)" if n_seeds > 1 else ""))
    ax.legend(fontsize=8, bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.tight_layout()
    atomic_path(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)


def plot_roc(run: RunDir, rows: list[dict], path: Path) -> None:
    """ROC curves of the first training seed's test predictions."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for r in rows:
        pred = run.predictions(r["model"], r["feature_set"])
        if not pred.exists():
            continue
        p = pd.read_parquet(pred)
        fpr, tpr, _ = roc_curve(p["label"], p["score"])
        ax.plot(fpr, tpr, lw=1, label=f"{r['model']} {r['feature_set']} ({r['per_seed'][0]['auc']:.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC on the test split")
    ax.legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    atomic_path(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)


def plot_convergence(rows: list[dict], path: Path, models=("kdcn", "dcn")) -> bool:
    """Validation AUC per epoch of K-DCN and DCN (K-DCN paper, Figure 5): mean over seeds, band
    = min..max over the seeds still training at that epoch (early stopping ends seeds apart)."""
    curves = [(r["model"], r["feature_set"], [c for c in r.get("val_auc_by_seed", []) if c]) for r in rows
              if r["model"] in models]
    curves = [c for c in curves if c[2]]
    if not curves:
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    for model, fs, by_seed in curves:
        n = max(len(c) for c in by_seed)
        grid = np.full((len(by_seed), n), np.nan)
        for i, c in enumerate(by_seed):
            grid[i, :len(c)] = c
        epochs = np.arange(1, n + 1)
        line, = ax.plot(epochs, np.nanmean(grid, axis=0), marker="o",
                        label=f"{model} ({fs})" + (f", {len(by_seed)} seeds" if len(by_seed) > 1 else ""))
        if len(by_seed) > 1:
            ax.fill_between(epochs, np.nanmin(grid, axis=0), np.nanmax(grid, axis=0), color=line.get_color(),
                            alpha=0.2, lw=0)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation AUC")
    ax.set_title("Convergence: K-DCN vs DCN")
    ax.legend()
    fig.tight_layout()
    atomic_path(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)
    return True


def feature_sets_section(pipe, sets: list[str]) -> list[str]:
    """Which features (and how many input columns) each feature set of the run used."""
    out = ["## Feature sets", ""]
    for fs in sets:
        entries = pipe.spec.entries_for(fs)
        cols = len(pipe.feature_space(fs).fields)
        out.append(f"- **{fs}** ({cols} columns): " + ", ".join(f"`{e.name}` ({e.group})" for e in entries))
    return out + [""]


def insights_section(insights: dict) -> list[str]:
    """The simulator's ceiling and the best model's permutation importance, as Markdown lines."""
    md: list[str] = []
    if "ceiling" in insights:
        c = insights["ceiling"]
        md += ["## What the data allows", "",
               f"On the same {c['samples']} test requests, ranking by the simulator's **true utility** gives "
               f"AUC {100 * c['true_auc']:.1f} / T@1 {100 * c['true_top1']:.1f}; the simulator's **learnable "
               f"ceiling** (a logistic regression on observable clues of every block, valid+test) reaches AUC "
               f"{100 * c['learnable_auc']:.1f} / T@1 {100 * c['learnable_top1']:.1f}.", ""]
    if "importance" in insights:
        imp = insights["importance"]
        md += [f"Permutation importance of the best model ({imp['model']} on {imp['feature_set']}): each feature "
               "group's columns shuffled together across the test rows (3 seeded shuffles); the drop in points.", "",
               "| group | fields | Δ AUC | Δ T@1 |", "|---|---:|---:|---:|"]
        for g in sorted(imp["groups"], key=lambda g: -g["auc_drop"]):
            md.append(f"| {g['group']} | {g['n_fields']} | {100 * g['auc_drop']:.1f} ± {100 * g['auc_drop_std']:.1f} "
                      f"| {100 * g['top1_drop']:.1f} ± {100 * g['top1_drop_std']:.1f} |")
        md.append("")
    return md


def write_report(run: RunDir, results: list[dict], corpus, cfg, elapsed_s: float, pipe=None,
                 insights: dict | None = None) -> str:
    t0 = time.perf_counter()
    rows, reps = summarise(run, results, cfg.training_seeds()[0])

    def groups_of(fs: str) -> frozenset:
        if pipe is not None:
            return frozenset(e.group for e in pipe.spec.entries_for(fs))
        return frozenset(fs.split("+"))

    diffs = differences(rows, reps, groups_of)
    boot_s = time.perf_counter() - t0
    write_json(run.metrics_json, rows)
    write_json(run.differences_json, diffs)
    df = metrics_frame(rows)
    atomic_path(run.metrics_csv, lambda tmp: df.to_csv(tmp, index=False))
    plot_ablation(rows, run.plot("ablation_auc"))
    plot_roc(run, rows, run.plot("roc"))
    has_conv = plot_convergence(rows, run.plot("convergence_kdcn_dcn"))
    synthetic = not cfg.data
    n = corpus.samples["split"].value_counts().to_dict()
    seeds = cfg.training_seeds()
    md = [f"# {cfg.name}", "", cfg.description.strip(), ""]
    if synthetic:
        md += ["> **Synthetic data.** These figures come from the embedded synthetic E-ConvRec-like corpus "
               f"(scale `{cfg.scale}`, seed {cfg.seed}); they show the framework works and how the feature groups "
               "interact, and are **not comparable** with the numbers in the E-ConvRec or K-DCN papers.", ""]
    how = (f"mean over training seeds {', '.join(map(str, seeds))} ± their standard deviation, then"
           if len(seeds) > 1 else f"training seed {seeds[0]};")
    md += [f"Samples: train {n.get('train', 0)}, valid {n.get('valid', 0)}, test {n.get('test', 0)}; "
           f"candidate rows {len(corpus.candidates):,}. Metrics on the test split; AUC and T@K in %.", "",
           f"Each cell: {how} [95% bootstrap interval over the test requests ({N_BOOT} resamples of whole "
           "requests)].", "", table8(rows), ""]
    if diffs:
        md += ["## Differences", "",
               "Paired bootstrap over the same resampled test requests, in points (AUC, T@1, MRR, NDCG@10 x100): "
               "`a − b` [95% interval]; **bold** where the interval excludes 0. P(Δ AUC ≤ 0): share of resamples "
               "in which `a` does not beat `b` on AUC."
               + (" ΔAUC per seed: the difference within each training seed." if len(seeds) > 1 else ""), "",
               differences_table(diffs, len(seeds)), ""]
    md += insights_section(insights or {})
    if insights:
        write_json(run.insights_json, insights)
    if pipe is not None:
        md += feature_sets_section(pipe, list(dict.fromkeys(r["feature_set"] for r in rows)))
    md += ["Plots: `ablation_auc.png` (error bars: 95% intervals), `roc.png`"
           + (", `convergence_kdcn_dcn.png`" + (" (band: range over seeds)" if len(seeds) > 1 else "")
              if has_conv else ""),
           "", f"Total time {elapsed_s:.0f}s (bootstrap {boot_s:.1f}s)."]
    text = "\n".join(md) + "\n"
    with atomic_file(run.report) as f:
        f.write(text)
    return text
