"""What the general task path costs beside the MNLI-only one it replaced, at MNLI's sizes.

1. Scoring one epoch's predictions: `evaluation.set_metrics` (label maps, groups) against the MNLI / HANS
   functions (`mnli_metrics`, `hans_metrics`) on MNLI-m, MNLI-mm and HANS sizes (9,815 + 9,832 + 30,000).
2. The resume check: `preparation.source_revisions` (sha256 of every local source) on a GLUE folder as large as
   MNLI's (392,702 training pairs), against reading the same folder's training set (what a trial's data
   preparation does first).

    python bench/bench_tasks.py
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def scoring(repeats: int) -> tuple[float, float]:
    """Return (general, MNLI-only) seconds to score one epoch of predictions at MNLI's sizes."""
    from tis_ray.data.task import hans_set, mnli_set
    from tis_ray.evaluation import hans_metrics, mnli_metrics, set_metrics

    rng = np.random.default_rng(0)
    id2label = {0: "entailment", 1: "neutral", 2: "contradiction"}
    sizes = {"mnli_m": 9815, "mnli_mm": 9832}
    preds = {name: rng.integers(0, 3, n) for name, n in {**sizes, "hans": 30000}.items()}
    gold = {name: rng.integers(0, 3, n) for name, n in sizes.items()} | {"hans": rng.integers(0, 2, 30000)}
    heuristics = rng.choice(["lexical_overlap", "subsequence", "constituent"], 30000)
    subcases = rng.choice([f"sub{i}" for i in range(30)], 30000)
    meta = pd.DataFrame({"heuristic": heuristics, "subcase": subcases,
                         "gold": np.where(gold["hans"] == 0, "entailed", "non_entailed")})

    def general():
        for name in sizes:
            set_metrics(mnli_set(name), preds[name], gold[name], meta.iloc[:0], id2label)
        set_metrics(hans_set(), preds["hans"], gold["hans"], meta, id2label)

    def mnli_only():
        for name in sizes:
            dict(mnli_metrics(name, preds[name], gold[name], id2label))
        dict(hans_metrics(preds["hans"], gold["hans"], list(heuristics), list(subcases), id2label))

    return timed(general, repeats), timed(mnli_only, repeats)


def resume_check(n_train: int) -> tuple[float, float]:
    """Return (revision check, reading the training set) seconds on a GLUE folder of `n_train` pairs."""
    from tis_ray.data.loaders import load_glue_mnli
    from tis_ray.data.synthetic import generate_nli
    from tis_ray.preparation import source_revisions
    from tis_ray.spec import build_spec

    header = ("index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
              "sentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label\n")
    names = ("entailment", "neutral", "contradiction")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, n in (("train.tsv", n_train), ("dev_matched.tsv", 9815), ("dev_mismatched.tsv", 9832)):
            pairs = generate_nli(n, 0, length_profile="mnli")
            rows = (f"{i}\t0\t{i}e\tfiction\t-\t-\t-\t-\t{p}\t{h}\t{names[y]}\t{names[y]}\n"
                    for i, (p, h, y) in enumerate(zip(pairs["premise"], pairs["hypothesis"], pairs["label"],
                                                      strict=True)))
            (folder / name).write_text(header + "".join(rows))
        spec = build_spec({"data": {"source": "glue_dir", "glue_dir": str(folder), "hans": None}})
        check = timed(lambda: source_revisions(spec), 3)
        read = timed(lambda: load_glue_mnli(folder), 1)
        size = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
    print(f"GLUE folder of {n_train:,} training pairs: {size:.0f} MiB")
    return check, read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=392_702)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    from common import machine, record

    general, legacy = scoring(args.repeats)
    check, read = resume_check(args.n_train)
    record("Any task: scoring and the resume check (issue 22)", f"""
`python bench/bench_tasks.py` on {machine()}.

| what | general path | beside | ratio |
|---|---:|---:|---:|
| scoring one epoch at MNLI sizes (MNLI-m 9,815 + MNLI-mm 9,832 + HANS 30,000, 30 subcases): `set_metrics` with label maps and groups vs `mnli_metrics` + `hans_metrics` | {1000 * general:.1f} ms | {1000 * legacy:.1f} ms | {general / legacy:.2f} |
| `--resume`'s revision check (sha256 of every local source) vs reading the training set, on a GLUE folder of {args.n_train:,} pairs | {check:.2f} s | {read:.1f} s | {check / read:.3f} |

The general evaluation is not slower than the MNLI-only one it replaced (numpy masks instead of Python lists), and
checking every source's revision on resume costs a fraction of reading the data once.""")


if __name__ == "__main__":
    main()
