"""Figures of a grid's results table (PNG and SVG), in the style of Wijnja et al. (2020), Figs. 3–4.

    python -m lottery.plot runs/compare_quick/results.csv [--out DIR]

``accuracy`` (and ``accuracy_at_best``, at each round's early-stopping point, as Frankle & Carbin plot it):
test accuracy against % of weights remaining (log scale, decreasing left to right), one line
per start with ± std error bars over seeds, the dense accuracy as a dashed reference; ``sleeping``: the
fraction of surviving weights that barely moved from w0; ``early_stop``: the best-validation iteration within
the round (the epoch where a table lacks iterations). One panel per model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator  # noqa: E402

from lottery.console import run_cli, table_arguments  # noqa: E402
from lottery.pruning.at_init import SCORERS  # noqa: E402
from lottery.results import read_table  # noqa: E402


def _panels(models: list[str], sharey: bool = False) -> tuple[Any, list[Any]]:
    fig, axes = plt.subplots(1, len(models), figsize=(7.5 * len(models), 5.2), squeeze=False, sharey=sharey)
    return fig, list(axes[0])


def _x_axis(ax: Any) -> None:
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("% of weights remaining (log scale)")
    ax.grid(True, which="both", alpha=0.3)


def _lines(ax: Any, df: Any, column: str, scale: float = 1.0) -> None:
    for start, g in df.groupby("start", sort=True):
        s = g.groupby("round").agg(x=("remaining_pct", "mean"), y=(column, "mean"), e=(column, "std"),
                                   n=(column, "size"))
        s = s.dropna(subset=["y"])
        ax.errorbar(s["x"], s["y"] * scale, yerr=s["e"].fillna(0) * scale, marker="o", markersize=3.5, capsize=3,
                    linewidth=1.4, label=f"{start} (n={int(s['n'].max())})")


# Deterministic bytes: no creation date or software version in the files, and SVG ids hashed from a fixed
# salt instead of random, so regenerating a figure from the same table rewrites nothing a diff would show
METADATA = {".png": {"Software": None}, ".svg": {"Date": None, "Creator": None}}


def _save(fig: Any, out: Path, name: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    paths = [out / f"{name}.png", out / f"{name}.svg"]
    for p in paths:
        tmp = p.with_name(f".{p.stem}.tmp{p.suffix}")  # written whole, then renamed over the old figure
        with plt.rc_context({"svg.hashsalt": f"lottery-{name}"}):
            fig.savefig(tmp, dpi=150, metadata=METADATA[p.suffix])
        tmp.replace(p)
    plt.close(fig)
    return paths


def dense_accuracy(df: Any, metric: str) -> float:
    """The mean dense accuracy: the tickets' round 0. A reinit control's round 0 is another dense start and a
    random-prune control's is the ticket's own network again, so neither may weigh in."""
    if "control" in df and (df["control"] == "ticket").any():
        df = df[df["control"] == "ticket"]
    return float(df[df["round"] == 0][metric].mean())


def accuracy(df: Any, out: Path, metric: str = "test_acc") -> list[Path]:
    models = sorted(df["model"].unique())
    fig, axes = _panels(models)
    for ax, model in zip(axes, models, strict=True):
        d = df[df["model"] == model]
        _lines(ax, d, metric, 100)
        dense = dense_accuracy(d, metric) * 100
        ax.axhline(dense, color="black", linestyle="--", linewidth=1, label=f"dense (mean {dense:.2f} %)")
        _x_axis(ax)
        ax.set_ylabel("test accuracy " + ("at the round's end" if metric == "test_acc" else
                                          "at early stopping (best validation)") + " (%)")
        ax.set_title(f"{model}: test accuracy (mean ± std over seeds)")
        ax.legend(fontsize=8, loc="lower left")
    return _save(fig, out, "accuracy" if metric == "test_acc" else f"accuracy_{metric.removeprefix('test_acc_')}")


def sleeping(df: Any, out: Path) -> list[Path]:
    cols = [c for c in df.columns if c.startswith("sleeping_")]
    if not cols:
        return []
    column = "sleeping_rel_0.1" if "sleeping_rel_0.1" in cols else cols[-1]
    models = sorted(df["model"].unique())
    fig, axes = _panels(models)
    for ax, model in zip(axes, models, strict=True):
        _lines(ax, df[df["model"] == model], column, 100)
        _x_axis(ax)
        tau = column.removeprefix("sleeping_").replace("rel_", "τ = ").replace("abs_", "|Δw| < ")
        ax.set_ylabel(f"sleeping weights, % of survivors ({tau}{' × std(w0)' if 'rel' in column else ''})")
        ax.set_title(f"{model}: weights that barely moved from w0 (mean over layers)")
        ax.legend(fontsize=8)
    return _save(fig, out, "sleeping")


def early_stop(df: Any, out: Path) -> list[Path]:
    # in iterations, as F&C plot it, where every row has them; an epoch is 917 of them on MNIST at batch 60,
    # too coarse to tell a ticket that stops at 3,200 from one that stops at 4,000
    column = next((c for c in ("steps_to_best", "epochs_to_best") if c in df and df[c].notna().all()), None)
    if column is None:
        return []
    models = sorted(df["model"].unique())
    fig, axes = _panels(models)
    for ax, model in zip(axes, models, strict=True):
        _lines(ax, df[df["model"] == model], column)
        _x_axis(ax)
        unit = "iteration" if column == "steps_to_best" else "epoch"
        ax.set_ylabel(f"early-stopping {unit} (best validation) within the round")
        ax.set_title(f"{model}: how fast tickets learn")
        ax.legend(fontsize=8)
    return _save(fig, out, "early_stop")


FC_LEVELS = (100.0, 51.3, 21.1, 7.0, 3.6, 1.9)  # the levels of Frankle & Carbin's Figure 3


def iterations(results: list[dict[str, Any]], out: Path, levels: tuple[float, ...] = FC_LEVELS) -> list[Path]:
    """Test accuracy against training iteration within the round, at the levels nearest ``levels``: one
    panel per treatment (the ticket, its controls), one line per level, mean over seeds (F&C's Figure 3).
    Needs the cells' curves (runs whose evaluations count steps)."""
    import pandas as pd

    rows = []
    for res in results:
        pct = {r["round"]: r["remaining_pct"] for r in res.get("rounds", [])}
        ident = res.get("identity", {})
        for point in res.get("curve", []):
            rows.append({"treatment": ident.get("control") or "ticket", "seed": ident.get("seed"),
                         "round": point["round"], "pct": pct.get(point["round"]), "step": point["step"],
                         "test_acc": point.get("test_acc")})
    if not rows:
        return []
    df = pd.DataFrame(rows).dropna(subset=["pct", "test_acc"])
    by_round = df.groupby("round")["pct"].mean()
    chosen = sorted({int((by_round - level).abs().idxmin()) for level in levels})
    treatments = sorted(df["treatment"].unique(), key=lambda t: (t != "ticket", t))
    fig, axes = _panels(treatments, sharey=True)  # one scale: the panels are read against each other
    for ax, treatment in zip(axes, treatments, strict=True):
        d = df[(df["treatment"] == treatment) & df["round"].isin(chosen)]
        for rnd, g in d.groupby("round"):
            mean = g.groupby("step")["test_acc"].mean()
            ax.plot(mean.index, 100 * mean.to_numpy(), linewidth=1.3, label=f"{by_round[rnd]:.1f} %")
        ax.set_xlabel("training iteration within the round")
        ax.set_ylabel("test accuracy (%)")
        ax.yaxis.set_tick_params(labelleft=True)
        seeds = d["seed"].nunique()
        ax.set_title(f"{treatment}: accuracy during training (mean over {seeds} seed{'s' * (seeds != 1)})")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, title="weights remaining")
    return _save(fig, out, "iterations")


def methods(df: Any, out: Path, metric: str = "test_acc_at_best") -> list[Path]:
    """A grid of methods (IMP and pruning at init): each method's accuracy against % remaining as chosen, with
    its masks shuffled within each layer, and reinitialised (Frankle et al. 2021's Figure 3), one panel each."""
    chosen = ["ticket", *[m for m in SCORERS if (df["control"] == m).any()]]
    panels = [(title, ablation) for title, ablation in (("as chosen", ""), ("shuffled within each layer",
              "random_prune"), ("reinitialised", "reinit")) if not ablation or (df["control"] == ablation).any()]
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 5.2), sharey=True, squeeze=False)
    axes = list(axes[0])
    for ax, (title, ablation) in zip(axes, panels, strict=True):
        for m in chosen:
            name = ablation or m if m == "ticket" else f"{m} {ablation}".strip()
            _lines(ax, df[df["control"] == name].assign(start="IMP" if m == "ticket" else m), metric, 100)
        _x_axis(ax)
        ax.set_title(f"{title} (mean ± std over seeds)")
        ax.legend(fontsize=8, loc="lower left")
    axes[0].set_ylabel("test accuracy at early stopping (%)")
    return _save(fig, out, "methods")


def plot_all(table: str | Path, out: str | Path) -> list[Path]:
    df = read_table(table)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    at_best = accuracy(df, out, "test_acc_at_best") if df["test_acc_at_best"].notna().any() else []
    ways = methods(df, out) if "control" in df and df["control"].isin(list(SCORERS)).any() and at_best else []
    return accuracy(df, out) + at_best + sleeping(df, out) + early_stop(df, out) + ways


def main(argv: list[str] | None = None) -> int:
    results, out = table_arguments("python -m lottery.plot", __doc__, argv)

    def body() -> int:
        for path in plot_all(results, out):
            print(path)
        return 0

    return run_cli(body)


if __name__ == "__main__":
    raise SystemExit(main())
