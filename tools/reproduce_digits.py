"""Reproduce the README's domain-adaptation tables with one command: data, every run, every evaluation, the means.

    python tools/reproduce_digits.py [--shared ../shared/data] [--runs runs/digits] [--seeds 0 1] [--set k=v ...]

Steps (each skipped when its result exists, so an interrupted reproduction resumes):
  1. prepare MNIST (test 0-4999), MNIST-M train 0-3999 and the held-out MNIST-M 4000-4999 (datasets/prepare.py);
  2. the MNIST classifier (the DTN judge) and DTN's f (the paper's digit encoder on MNIST-M);
  3. per seed: DANN MNIST -> MNIST-M, its source-only baseline (model.domain_weight=0), DTN MNIST-M -> MNIST;
  4. scores on the held-out MNIST-M: DANN target accuracy and Recall@1, DTN translations judged by the MNIST
     classifier (and the untranslated images); then the table with each seed and the mean.
The recipes' headers hold the same commands one by one. `--set train.max_steps=20` makes a quick smoke run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def sh(*command: str) -> str:
    """Run a command from the repository root; its stdout (a JSON report for `translate eval`)."""
    print("+", " ".join(map(str, command)), file=sys.stderr, flush=True)
    return subprocess.run([str(c) for c in command], cwd=REPO, check=True, stdout=subprocess.PIPE, text=True).stdout


def translate(*args: str) -> str:
    return sh(sys.executable, "-m", "translate", *args)


def train(recipe: str, run: Path, *overrides: str) -> Path:
    if not (run / "export" / "config.json").exists():
        resume = ["--resume"] if (run / "checkpoints").is_dir() else []
        translate("train", f"recipes/{recipe}.yaml", *overrides, "--run-dir", str(run), *resume)
    return run / "export"


def prepare(shared: Path, data: Path) -> None:
    mnist, mnist_m = shared / "digits" / "mnist", shared / "digits" / "mnist_m"
    jobs = {
        data / "mnist": ["mnist", "--images", mnist / "mnist_test_00000-04999-images-idx3-ubyte.gz",
                         "--labels", mnist / "mnist_test_00000-04999-labels-idx1-ubyte.gz"],
        data / "mnist_m_train": ["mnist_m", "--images-dir", mnist_m / "mnist_m_train",
                                 "--labels", mnist_m / "mnist_m_train_labels.txt", "--stop", "4000"],
        data / "mnist_m_test": ["mnist_m", "--images-dir", mnist_m / "mnist_m_train",
                                "--labels", mnist_m / "mnist_m_train_labels.txt", "--start", "4000"],
    }
    for out, args in jobs.items():
        if not out.is_dir():
            sh(sys.executable, "datasets/prepare.py", *args, "--out", out)


def evaluate(kind: str, model: Path, out: Path, *extra: str) -> dict:
    if not out.exists():
        out.write_text(translate("eval", kind, "--model", str(model), *extra, "--no-progress"))
    return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--runs", type=Path, default=Path("runs/digits"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--set", nargs="*", default=[], help="overrides for every training, e.g. train.max_steps=20")
    args = parser.parse_args(argv)
    data, runs = args.runs / "data", args.runs
    prepare(args.shared, data)
    judge = train("classifier_digits", runs / "classifier_mnist", f"data.root={data / 'mnist'}", *args.set)
    f = train("classifier_digits", runs / "classifier_mnist_m", f"data.root={data / 'mnist_m_train'}",
              "model.encoder=dtn", *args.set)
    test, rows = data / "mnist_m_test", {}
    dann_data = [f"data.source={data / 'mnist'}", f"data.target={data / 'mnist_m_train'}"]
    for seed in args.seeds:
        for name, extra in (("dann", []), ("source_only", ["model.domain_weight=0"])):
            run = runs / f"{name}_s{seed}"
            export = train("dann_digits", run, *dann_data, *extra, f"train.seed={seed}", *args.set)
            accuracy = evaluate("classify", export, run / "classify.json", "--folder", str(test))["accuracy"]
            recall = evaluate("retrieval", export, run / "retrieval.json", "--query", str(test),
                              "--gallery", str(data / "mnist"))["recall@1"]
            rows.setdefault(name, []).append((accuracy, recall))
        run = runs / f"dtn_s{seed}"
        export = train("dtn_digits", run, f"model.encoder={f}", f"data.source={data / 'mnist_m_train'}",
                       f"data.target={data / 'mnist'}", f"train.seed={seed}", *args.set)
        translated = run / "translated"
        if not translated.is_dir():
            translate("convert", str(export), str(test), str(translated), "--compile", "off")
        judged = evaluate("classify", judge, run / "classify.json", "--folder", str(translated))
        rows.setdefault("dtn", []).append((judged["accuracy"], None))
    untranslated = evaluate("classify", judge, runs / "untranslated.json", "--folder", str(test))["accuracy"]
    print_tables(rows, untranslated, args.seeds)
    return 0


def print_tables(rows: dict, untranslated: float, seeds: list[int]) -> None:
    seed_names = " | ".join(f"seed {s}" for s in seeds)
    print(f"\n| DANN MNIST -> MNIST-M (held-out MNIST-M) | {seed_names} | mean |")
    print("|---|" + "---|" * (len(seeds) + 1))
    for name, label in (("dann", "DANN"), ("source_only", "source only")):
        for i, metric in enumerate(("target accuracy", "Recall@1")):
            values = [row[i] for row in rows[name]]
            print(f"| {label}, {metric} | " + " | ".join(f"{v:.3f}" for v in values)
                  + f" | {statistics.mean(values):.3f} |")
    values = [row[0] for row in rows["dtn"]]
    print(f"\n| DTN MNIST-M -> MNIST, MNIST classifier on G(x) | {seed_names} | mean |")
    print("|---|" + "---|" * (len(seeds) + 1))
    print("| DTN | " + " | ".join(f"{v:.3f}" for v in values) + f" | {statistics.mean(values):.3f} |")
    print(f"| untranslated | {untranslated:.3f} |" + " |" * len(seeds))


if __name__ == "__main__":
    raise SystemExit(main())
