"""One style for every plot the benchmark tools write (tools/bench.py, tools/quality.py): titles in words with the
better direction, the legend below the panels, at most ~1,500 px wide."""

from __future__ import annotations

from pathlib import Path

# Score key -> the panel's title: what it measures, in words, and which way is better.
SCORE_TITLES = {
    "fid": "FID, lower is better",
    "top1": "{cls} top-1, higher is better",
    "structure_l1": "layout change from the input, lower keeps more",
    "perceptual": "perceptual distance to the photo, lower is better",  # from the dataset's edges
    "remade_perceptual": "the same from drawn-looking edges, lower is better",
    "ssim": "SSIM to the photo, higher is better",
}
PLOT_STYLE = {
    "figure.dpi": 100, "savefig.dpi": 100, "font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10,
    "legend.fontsize": 9, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
    "axes.spines.right": False, "lines.linewidth": 1.8, "lines.markersize": 4,
}
PANEL_INCHES = (4.8, 3.2)  # at 100 dpi: three panels a row stay under 1,500 px
MAX_COLUMNS = 3


def variant_label(variant: str, variants: list[str]) -> str:
    """A curve's name in the legend: presets by name, seeds in words, the reference and the inputs said plainly."""
    if variant == "input":
        return "untranslated input"
    if variant == "reference":
        return "reference implementation (its own train.py)"
    name, _, seed = variant.partition(".seed")
    if seed:
        return f"{name}, seed {seed}"
    return f"{name}, seed 0" if f"{variant}.seed1" in variants else name


def plot_quality(points: list[dict], path: Path, imagenet_class: str | None = None, title: str | None = None) -> None:
    """Each score against training minutes, one panel per score, one curve per variant, the untranslated inputs as
    a dashed grey line; written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from translate.utils import atomic_path

    metrics = [m for m in SCORE_TITLES if any(m in p for p in points)]
    variants = list(dict.fromkeys(p["variant"] for p in points))
    columns = 2 if len(metrics) == 4 else min(MAX_COLUMNS, len(metrics))  # 2 x 2 rather than 3 + 1
    rows = -(-len(metrics) // columns)
    with plt.rc_context(PLOT_STYLE):
        fig, axes = plt.subplots(rows, columns, squeeze=False, layout="constrained",
                                 figsize=(PANEL_INCHES[0] * columns, PANEL_INCHES[1] * rows + 0.9))
        colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for ax, metric in zip(axes.flat, metrics):
            for index, variant in enumerate(v for v in variants if v != "input"):
                mine = sorted((p for p in points if p["variant"] == variant and metric in p),
                              key=lambda p: p["minutes"])
                if mine:
                    ax.plot([p["minutes"] for p in mine], [p[metric] for p in mine], marker="o",
                            color=colours[index % len(colours)], label=variant_label(variant, variants))
            untranslated = [p for p in points if p["variant"] == "input" and metric in p]
            if untranslated:
                ax.axhline(untranslated[0][metric], color="grey", linestyle="--",
                           label=variant_label("input", variants))
            ax.set_title(SCORE_TITLES[metric].format(cls=imagenet_class or "ImageNet class"))
            ax.set_xlabel("training minutes")
        for ax in axes.flat[len(metrics):]:
            ax.set_visible(False)
        handles, labels = {}, []
        for ax in axes.flat:
            for handle, label in zip(*ax.get_legend_handles_labels()):
                if label not in handles:
                    handles[label] = handle
                    labels.append(label)
        fig.legend([handles[label] for label in labels], labels, loc="outside lower center",
                   ncol=min(3, len(labels)), frameon=False)
        if title:
            fig.suptitle(title, fontsize=12)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)
