"""The TOFU benchmark's table and its FQ-vs-MU plot.

The plot follows the TOFU paper's reading: Forget Quality on a log axis (a KS p-value spans many
orders of magnitude), Model Utility on a linear one; the retain model is the goal (FQ = 1) and
the target model the starting point. A second panel uses the retain-set utility alone, which is
the meaningful utility for a model that never saw real-world text (the ``tiny`` preset).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

COLUMNS = ("method", "FQ", "MU", "MU-retain", "forget ROUGE-L", "forget MEMO", "retain ROUGE-L", "wall s")
#: drawn below FQ = 1e-30 so a collapsed p-value still shows on the log axis
FQ_FLOOR = 1e-30


def build_rows(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per model/method with the numbers the table prints (JSON-ready)."""
    rows = []
    for label, r in results.items():
        m = r["metrics"]
        rows.append({
            "method": label,
            "forget_quality": m.get("forget_quality"),
            "ks_statistic": m.get("ks_statistic"),
            "model_utility": m.get("model_utility"),
            "model_utility_retain_only": m.get("model_utility_retain_only"),
            "forget_rougeL": m.get("forget_rougeL"),
            "forget_memo": r.get("forget_memo"),
            "forget_prob": m.get("forget_prob"),
            "forget_truth_ratio": m.get("forget_truth_ratio"),
            "retain_rougeL": m.get("retain_rougeL"),
            "retain_prob": m.get("retain_prob"),
            "wall_seconds": r.get("wall_seconds"),
        })
    return rows


def _fmt(v: Any, kind: str) -> str:
    if v is None:
        return "-"
    if kind == "p":
        return f"{v:.2e}" if v < 0.01 else f"{v:.3f}"
    if kind == "s":
        return f"{v:.1f}"
    return f"{v:.3f}"


def format_table(rows: list[dict[str, Any]], markdown: bool = False) -> str:
    """The benchmark table as aligned text (or a Markdown table for the docs)."""
    cells = [[r["method"], _fmt(r["forget_quality"], "p"), _fmt(r["model_utility"], "f"),
              _fmt(r["model_utility_retain_only"], "f"), _fmt(r["forget_rougeL"], "f"), _fmt(r["forget_memo"], "f"),
              _fmt(r["retain_rougeL"], "f"), _fmt(r["wall_seconds"], "s")] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
        lines += ["| " + " | ".join(c) + " |" for c in cells]
        return "\n".join(lines)
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(COLUMNS)]

    def fmt_row(c: list[str]) -> str:
        return "  ".join(x.ljust(w) if i == 0 else x.rjust(w) for i, (x, w) in enumerate(zip(c, widths, strict=True)))

    return "\n".join([fmt_row(list(COLUMNS)), fmt_row(["-" * w for w in widths]), *[fmt_row(c) for c in cells]])


def plot_fq_mu(result: dict[str, Any], path: str | Path) -> Path:
    """A PNG with one point per method plus target and retain: FQ (log) against MU."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["table"]
    panels = [("model_utility", "Model Utility (9 numbers, TOFU)"),
              ("model_utility_retain_only", "Utility on the retain set only")]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), dpi=100)
    # MEOW red, target black, retain green; the baselines share the remaining tab10 colours.
    palette = ["tab:blue", "tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:gray", "tab:olive", "tab:cyan"]
    styles = {"target": ("s", "black"), "retain": ("*", "tab:green"), "meow": ("D", "tab:red")}
    for ax, (key, xlabel) in zip(axes, panels, strict=True):
        baselines = [r["method"] for r in rows if r["method"] not in styles]
        for r in rows:
            x, fq = r.get(key), r.get("forget_quality")
            if x is None or fq is None:
                continue
            y = max(fq, FQ_FLOOR)
            style = styles.get(r["method"])
            marker, color = style if style else ("o", palette[baselines.index(r["method"]) % len(palette)])
            if r["method"] == "target":  # hollow and large: a method that did not move stays visible on it
                ax.scatter([x], [y], marker=marker, facecolors="none", edgecolors=color, s=160, linewidths=1.5,
                           zorder=2)
            else:
                ax.scatter([x], [y], marker=marker, color=color, s=90 if style else 50, zorder=3)
            below = r["method"] == "meow"
            ax.annotate(r["method"], (x, y), textcoords="offset points", xytext=(6, -11 if below else 4), fontsize=8,
                        fontweight="bold" if r["method"] == "meow" else "normal")
        ax.set_yscale("log")
        ax.margins(x=0.08, y=0.12)  # room for the labels of the extreme points
        ax.set_xlabel(xlabel)
        ax.set_ylabel("Forget Quality (KS p-value, log)")
        ax.axhline(0.05, color="grey", lw=0.8, ls="--")
        ax.grid(True, which="major", alpha=0.3)
    n_f = result["data"]["n_forget"]
    fig.suptitle(f"TOFU bench '{result['preset']}' (seed {result['seed']}, forget n={n_f}); "
                 "up and right is better", fontsize=10)
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p)
    plt.close(fig)
    return p

