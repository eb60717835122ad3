"""Run reports: metrics tables (E-ConvRec Table 8 layout), CSV/JSON, and PNG plots."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from core.io import atomic_file, atomic_path, write_json  # noqa: E402
from pipelines.rundir import RunDir  # noqa: E402

COLUMNS = ["auc", "logloss", "top@1", "top@5", "top@10", "mrr", "ndcg@10", "train_s"]
PCT = ["auc", "top@1", "top@5", "top@10", "mrr", "ndcg@10"]


def metrics_frame(results: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame([{k: r.get(k) for k in ["model", "feature_set", *COLUMNS]} for r in results])
    return df


def table8(df: pd.DataFrame) -> str:
    """Markdown table laid out like E-ConvRec Table 8 (percentages; model named once per block)."""
    head = "| Model | Feature | AUC | Logloss | T@1 | T@5 | T@10 | MRR | NDCG@10 | Train s |"
    lines = [head, "|" + "---|" * 10]
    last = None
    for _, r in df.iterrows():
        name = r["model"] if r["model"] != last else ""
        last = r["model"]
        cells = [f"{100 * r[c]:.2f}" for c in ["auc"]] + [f"{r['logloss']:.4f}"]
        cells += [f"{100 * r[c]:.2f}" for c in ["top@1", "top@5", "top@10", "mrr", "ndcg@10"]]
        lines.append(f"| {name} | {r['feature_set']} | " + " | ".join(cells) + f" | {r['train_s']:.1f} |")
    return "\n".join(lines)


def plot_ablation(df: pd.DataFrame, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(9, 4))
    models = list(dict.fromkeys(df["model"]))
    sets = list(dict.fromkeys(df["feature_set"]))
    w = 0.8 / max(len(sets), 1)
    for j, fs in enumerate(sets):
        vals = [df[(df.model == m) & (df.feature_set == fs)]["auc"].max() for m in models]
        ax.bar(np.arange(len(models)) + j * w, [v if v == v else 0 for v in vals], w, label=fs)
    ax.set_xticks(np.arange(len(models)) + w * (len(sets) - 1) / 2, models)
    lo = df["auc"].min()
    ax.set_ylim(max(0.0, lo - 0.05), min(1.0, df["auc"].max() + 0.03))
    ax.set_ylabel("test AUC")
    ax.set_title("Feature-set ablation")
    ax.legend(fontsize=8, bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.tight_layout()
    atomic_path(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)


def plot_roc(run: RunDir, df: pd.DataFrame, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5, 5))
    for _, r in df.iterrows():
        pred = run.predictions(r["model"], r["feature_set"])
        if not pred.exists():
            continue
        p = pd.read_parquet(pred)
        fpr, tpr, _ = roc_curve(p["label"], p["score"])
        ax.plot(fpr, tpr, lw=1, label=f"{r['model']} {r['feature_set']} ({r['auc']:.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC on the test split")
    ax.legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    atomic_path(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)


def plot_convergence(results: list[dict], path: Path, models=("kdcn", "dcn")) -> bool:
    """Validation AUC per epoch of K-DCN and DCN (K-DCN paper, Figure 5)."""
    curves = [(r["model"], r["feature_set"], r.get("history", {}).get("val_auc", [])) for r in results
              if r["model"] in models]
    curves = [c for c in curves if c[2]]
    if not curves:
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    for model, fs, auc in curves:
        ax.plot(np.arange(1, len(auc) + 1), auc, marker="o", label=f"{model} ({fs})")
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


def write_report(run: RunDir, results: list[dict], corpus, cfg, elapsed_s: float, pipe=None) -> str:
    df = metrics_frame(results)
    write_json(run.metrics_json, [{k: v for k, v in r.items() if k != "key"} for r in results])
    atomic_path(run.metrics_csv, lambda tmp: df.to_csv(tmp, index=False))
    plot_ablation(df, run.plot("ablation_auc"))
    plot_roc(run, df, run.plot("roc"))
    has_conv = plot_convergence(results, run.plot("convergence_kdcn_dcn"))
    synthetic = not cfg.data
    n = corpus.samples["split"].value_counts().to_dict()
    md = [f"# {cfg.name}", "", cfg.description.strip(), ""]
    if synthetic:
        md += ["> **Synthetic data.** These figures come from the embedded synthetic E-ConvRec-like corpus "
               f"(scale `{cfg.scale}`, seed {cfg.seed}); they show the framework works and how the feature groups "
               "interact, and are **not comparable** with the numbers in the E-ConvRec or K-DCN papers.", ""]
    md += [f"Samples: train {n.get('train', 0)}, valid {n.get('valid', 0)}, test {n.get('test', 0)}; "
           f"candidate rows {len(corpus.candidates):,}. Metrics on the test split; AUC and T@K in %.", "",
           table8(df), ""]
    if pipe is not None:
        md += feature_sets_section(pipe, list(dict.fromkeys(df["feature_set"])))
    md += ["Plots: `ablation_auc.png`, `roc.png`" + (", `convergence_kdcn_dcn.png`" if has_conv else ""),
           "", f"Total time {elapsed_s:.0f}s."]
    text = "\n".join(md) + "\n"
    with atomic_file(run.report) as f:
        f.write(text)
    return text
