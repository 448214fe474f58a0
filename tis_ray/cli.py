# PYTHON_ARGCOMPLETE_OK
"""`tis-ray train|embed|dynamics|cluster|sweep|status|export|report|doctor|schema`: every mistake is one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import argcomplete

from tis_ray import logs
from tis_ray.device import pin_single_gpu
from tis_ray.errors import TisRayError

log = logging.getLogger("tis_ray")


def _spec(args):
    from tis_ray.spec import load_spec

    return load_spec(args.spec, args.set)


def _train_point(args):
    """The grid point of `tis-ray train`: an explicit subset (--indices) or a sampler with its budget."""
    from tis_ray.samplers import IndicesSampler, sampler_from_entry
    from tis_ray.spec import grid_point, parse_overrides

    if args.indices:
        if args.sampler or args.sampler_param or args.data_pct or args.n_examples:
            raise TisRayError("--indices is the subset: it excludes --sampler, --sampler-param, --data-pct and "
                              "--n-examples")
        path = str(Path(args.indices).expanduser().resolve())
        n_examples = len(IndicesSampler(path=path).validate().load())
        return grid_point("--indices", seed=args.seed, n_examples=n_examples,
                          sampler={"type": "indices", "path": path})
    sampler = {"type": args.sampler or "random", **parse_overrides(args.sampler_param)}
    budget_free = sampler_from_entry(sampler).budget_free
    data_pct = None if args.n_examples or budget_free else args.data_pct or 1.0  # the whole set by default
    return grid_point("--sampler", seed=args.seed, data_pct=data_pct, n_examples=args.n_examples, sampler=sampler)


def cmd_train(args) -> int:
    """One grid point outside Ray: the sweep's shared preparation, then the same trial function."""
    pin_single_gpu()  # outside Ray: one GPU, never the Trainer's DataParallel over all of them
    from tis_ray.clustering import load_clusters, save_clusters
    from tis_ray.io import new_output_dir
    from tis_ray.preparation import finished_steps, prepare_shared, trial_inputs
    from tis_ray.samplers import sampler_from_entry
    from tis_ray.spec import build_spec, check_local_inputs
    from tis_ray.storage import Storage
    from tis_ray.trial import run_trial

    point = _train_point(args)
    raw = _spec(args).model_dump(mode="json")
    if args.cluster_input_path:
        raw["clustering"]["labels_path"] = args.cluster_input_path
    if args.embeddings:
        raw["clustering"]["embeddings_path"] = args.embeddings
    spec = build_spec(raw, source=args.spec).one_point(point)  # validates the sampler / budget combination
    check_local_inputs(spec)
    if args.cluster_only and sampler_from_entry(point.sampler).algorithm is None:
        raise TisRayError(f"--cluster-only needs a cluster sampler (kmeans or dbscan), not {point.sampler['type']!r}")
    out = Path(args.out)
    # a preparation that fails keeps the steps it finished (a rerun with other settings reuses them)
    with new_output_dir(out, keep=lambda: bool(finished_steps(Storage(out)))):
        inputs = trial_inputs(prepare_shared(spec, out, gpus=None), spec, point, out)
        clusters = inputs["clusters"]
        if clusters and args.cluster_output_path:
            save_clusters(load_clusters(clusters), args.cluster_output_path)
            log.info("cluster labels saved to %s", args.cluster_output_path)
        if args.cluster_only:
            return 0
        final = run_trial({"spec": spec.model_dump(mode="json"), "point": point.model_dump(mode="json"),
                           "prepared": inputs, "gpus": None}, out)
    shown = {k: round(v, 4) for k, v in final.items() if k.endswith("/acc") or k.startswith("hans/")}
    print(f"trial done: n_train={final['n_train']} {shown}")
    print(f"subset {final['subset_sha256'][:16]}, {final['train_examples_per_s']:.0f} examples/s "
          f"({final['device']}, {final['precision']}) -> {out}")
    return 0


def cmd_embed(args) -> int:
    """[CLS] embeddings of the spec's training set with a given model."""
    pin_single_gpu()  # outside Ray: one GPU, never the Trainer's DataParallel over all of them
    from tis_ray.data.prepare import prepare_data
    from tis_ray.device import placement
    from tis_ray.embeddings import embed_dataset
    from tis_ray.models import load_encoder_model, load_tokenizer

    spec = _spec(args)
    where = placement("tis-ray embed", None, args.precision)
    tokenizer = load_tokenizer(args.model, args.tokenizer or spec.model.tokenizer)
    data = prepare_data(spec, Path(args.out) / "prepared", tokenizer)
    manifest = embed_dataset(load_encoder_model(args.model), data.train, tokenizer.pad_token_id, args.out, placement=where,
                             pooling=args.pooling, batch_size=args.batch_size, dtype=args.dtype,
                             model_name=args.model, fingerprint=data.train_fingerprint)
    print(f"embedded {manifest['rows']} x {manifest['dim']} ({manifest['rows_per_s']:.0f} rows/s on "
          f"{where.describe()}) -> {args.out}")
    return 0


def cmd_dynamics(args) -> int:
    """Training dynamics of the spec's training set from one full-data fine-tune, outside a sweep."""
    pin_single_gpu()  # outside Ray: one GPU, never the Trainer's DataParallel over all of them
    from tis_ray.data.prepare import prepare_data
    from tis_ray.dynamics import load_dynamics
    from tis_ray.io import new_output_dir, read_json
    from tis_ray.models import load_tokenizer
    from tis_ray.preparation import reference_run

    spec = _spec(args)
    out = Path(args.out)
    with new_output_dir(out):
        data = prepare_data(spec, out / "data", load_tokenizer(spec.model.name, spec.model.tokenizer))
        reference_run(spec, out / "model", data, gpus=None, dynamics_out=out)
    dynamics, manifest = load_dynamics(out), read_json(out / "manifest.json")
    print(f"training dynamics of {len(dynamics)} examples over {dynamics.epochs} epochs "
          f"(mean confidence {dynamics.confidence().mean():.3f}; recording took {manifest['record_seconds']:.1f} s) "
          f"-> {out}; use it with dynamics.path: {out.resolve()}")
    return 0


def cmd_cluster(args) -> int:
    """Cluster saved embeddings and save labels (+ centers, distances)."""
    from tis_ray.clustering import dbscan_k_distance, describe_summary, fit_clusters, save_clusters
    from tis_ray.embeddings import load_embeddings
    from tis_ray.io import read_json
    from tis_ray.samplers import sampler_from_entry

    given = {"n_clusters": args.n_clusters} if args.algorithm == "kmeans" else {
        "eps": args.eps, "min_samples": args.min_samples, "metric": args.metric}
    # the sampler classes own the defaults and the validation of clustering parameters
    params = sampler_from_entry({"type": args.algorithm, **{k: v for k, v in given.items() if v is not None}}
                                ).clustering_params()
    if args.normalize != "none":
        params["normalize"] = args.normalize
    if args.k_distance and args.algorithm != "dbscan":
        raise TisRayError("--k-distance is for choosing DBSCAN's eps: use it with --algorithm dbscan")
    embeddings = load_embeddings(args.embeddings)
    out = Path(args.cluster_output_path)
    if args.k_distance:
        found = dbscan_k_distance(embeddings, params, out)
        print(f"k-distance knee: eps ~ {found['knee_eps']:.3g} (eps {params['eps']:g} makes "
              f"{found['core_fraction']:.0%} of points core points) -> {out / 'k_distance.png'}")
        return 0
    if args.algorithm == "kmeans":
        params["method"] = args.method
    fingerprint = read_json(Path(args.embeddings) / "manifest.json").get("fingerprint")
    result = fit_clusters(embeddings, params, args.backend, seed=args.seed, fingerprint=fingerprint)
    save_clusters(result, out)
    print(f"{args.algorithm}: {describe_summary(result.summary())}, {result.seconds:.1f} s on {result.backend} "
          f"-> {out}")
    return 0


def cmd_sweep(args) -> int:
    """Run or resume a sweep, then export its table next to it."""
    from tis_ray.export import export_table, write_table
    from tis_ray.hub import check_hub_models
    from tis_ray.preflight import check_before_preparation
    from tis_ray.spec import check_local_inputs, describe_paths, run_location
    from tis_ray.storage import join
    from tis_ray.sweep import describe_sweep, run_sweep

    spec = _spec(args)
    address = args.address or os.environ.get("RAY_ADDRESS")
    if args.dry_run:
        check_local_inputs(spec)
        check_hub_models(spec, ask_hub=False, on_cluster=bool(address))  # the local cache only: no network
        check_before_preparation(spec, args.num_cpus, on_cluster=bool(address))
        print(describe_sweep(spec))
        print(describe_paths(spec, args.spec))
        return 0
    run_sweep(spec, address=address, resume=args.resume, num_cpus=args.num_cpus)
    run_dir = run_location(spec)
    table = export_table(run_dir)
    path = write_table(table, join(run_dir, "results.parquet"))
    counts = table["status"].value_counts().to_dict()
    print(f"sweep {spec.name}: " + ", ".join(f"{v} {k}" for k, v in counts.items()) + f"; table -> {path}")
    failed = table[table["status"] == "failed"]
    for _, row in failed.iterrows():
        print(f"  failed {row['trial_id']} ({row['setting']}, seed {row['seed']}): {row['error']}")
    unfinished = int(table["status"].isin(["incomplete", "not_started"]).sum())
    if unfinished:
        print(f"interrupted: {unfinished} trials unfinished; continue with: tis-ray sweep {args.spec} --resume")
        return 130
    if len(failed):  # exit 1: the sweep ran to its end, but not every trial has results
        print(f"{len(failed)} of {len(table)} trials failed: each one's error is in "
              f"{join(run_dir, '<trial>', 'error.txt')} (tis-ray status {run_dir} lists them); "
              f"--resume runs them again")
        return 1
    print(f"next: tis-ray report {run_dir}")
    return 0


def cmd_plan(args) -> int:
    """Seeds each comparison of a spec needs, from a pilot run's spread or the documented defaults."""
    from tis_ray.planning import pilot_paired_table, render_plan, seed_plan

    spec = _spec(args)
    pilot = pilot_paired_table(args.pilot, spec.report.baseline) if args.pilot else None
    plan = seed_plan(spec, args.difference, args.hans_difference, pilot, power=args.power)
    print(render_plan(plan, power=args.power, holm=spec.report.holm))
    from tis_ray.datamodel_power import is_attribution_spec, render_attribution_plan

    if is_attribution_spec(spec):
        print("\n" + render_attribution_plan(spec))
    return 0


def cmd_attribute(args) -> int:
    """Datamodels from a run's random-subset trials, the LDS of every score, the top examples."""
    from tis_ray.attribution import attribute

    scores = dict(_pair(item, "--score NAME=PATH.npy") for item in args.score)
    manifest = attribute(args.run_dir, args.target or None, scores, sampler=args.sampler, estimator=args.estimator,
                         per_example=args.per_example)
    print(f"attribution -> {manifest.parent} (effects per target, lds.md, top_*.md)")
    return 0


def _pair(item: str, form: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name or not value:
        raise TisRayError(f"{item!r}: expected {form}")
    return name, value


def cmd_export(args) -> int:
    """Write the tidy results table of a run directory."""
    from tis_ray.export import export_table, write_table
    from tis_ray.storage import join

    table = export_table(args.run_dir, per_epoch=args.per_epoch)
    suffix = "_epochs" if args.per_epoch else ""
    out = args.out or join(args.run_dir, f"results{suffix}.{args.format}")
    write_table(table, out)
    print(f"{len(table)} rows ({', '.join(f'{v} {k}' for k, v in table['status'].value_counts().items())}) -> {out}")
    return 0


def cmd_schema(args) -> int:
    """The JSON Schema of spec files, for YAML editors (yaml-language-server, VS Code)."""
    import json

    from tis_ray.spec import spec_json_schema

    print(json.dumps(spec_json_schema(), indent=2))
    return 0


def cmd_status(args) -> int:
    """The live view of a sweep: its trials by state with their latest metrics, elapsed time and ETA."""
    from tis_ray.status import sweep_status

    print(sweep_status(args.run_dir).render())
    return 0


def cmd_report(args) -> int:
    """Tables, figures and index.md of a run directory or exported table."""
    from tis_ray.report import build_report, is_table, source_name
    from tis_ray.storage import is_uri

    if args.out:
        out = Path(args.out)
    elif is_table(args.source):
        out = Path("report")
    elif is_uri(args.source):  # a run directory on remote storage: the report is written here, locally
        out = Path("report") / source_name(args.source)
    else:
        out = Path(args.source) / "report"
    index = build_report(args.source, out, baseline=args.baseline)
    print(f"report -> {index}")
    return 0


def cmd_doctor(args) -> int:
    """What this machine (and with --address, the cluster) offers; exit 2 when something would break."""
    from tis_ray import doctor

    env = doctor.collect(args.address)
    found = doctor.problems(env)
    print(doctor.render(env, found))
    return 2 if found else 0


def cmd_demo_task(args) -> int:
    """Write the synthetic tasks' files (a single-sentence task, a 4-label pair task, out-of-distribution sets)."""
    from tis_ray.data.synthetic_tasks import write_demo_task

    for name, path in write_demo_task(args.folder, n_train=args.n_train).items():
        print(f"{name:>18}: {path}")
    return 0


def tis_ray_version() -> str:
    """Return the installed tis-ray distribution's version, e.g. '0.1.0'."""
    from importlib import metadata

    try:
        return metadata.version("tis-ray")
    except metadata.PackageNotFoundError:  # imported from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the tis-ray command."""
    parser = argparse.ArgumentParser(prog="tis-ray", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"%(prog)s {tis_ray_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_spec(p):
        p.add_argument("spec", help="experiment spec (YAML), e.g. experiments/demo.yaml")
        p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                       help="override a spec field, e.g. --set train.epochs=1 (repeatable)")
        return p

    p = with_spec(sub.add_parser("train", help="one training trial"))
    p.add_argument("--seed", type=int, default=42)
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--data-pct", type=float, help="fraction of the training set, in (0, 1] (default: 1.0)")
    budget.add_argument("--n-examples", type=int, help="absolute subset size")
    p.add_argument("--sampler", help="random (default), stratified, kmeans, dbscan")
    p.add_argument("--sampler-param", action="append", default=[], metavar="NAME=VALUE",
                   help="sampler parameter, e.g. mode=centroid, n_clusters=512 (repeatable)")
    p.add_argument("--indices", help=".npy of training-set indices to train on (instead of a sampler and budget); "
                                     "recorded as sampler 'indices' with n_examples = their number")
    clusters = p.add_mutually_exclusive_group()
    clusters.add_argument("--cluster-output-path", help="save the fitted cluster labels here")
    clusters.add_argument("--cluster-input-path", help="reuse cluster labels saved earlier")
    p.add_argument("--cluster-only", action="store_true", help="fit and save the clustering, then stop")
    p.add_argument("--embeddings", help="precomputed embeddings folder (tis-ray embed) to cluster")
    p.add_argument("--out", default="runs/train", help="output folder (default: runs/train)")
    p.set_defaults(func=cmd_train)

    p = with_spec(sub.add_parser("embed", help="[CLS] embeddings of the training set"))
    p.add_argument("--model", required=True, help="checkpoint folder or hub id")
    p.add_argument("--tokenizer", help="tokenizer, when the checkpoint has none")
    p.add_argument("--pooling", default="cls", choices=["cls", "mean", "pooler"])
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--dtype", default="float32", choices=["float32", "float16"], help="stored dtype")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"],
                   help="forward pass precision on a GPU (fp32 keeps the original's vectors; bf16 is faster)")
    p.add_argument("--out", required=True, help="output folder (embeddings.npy + manifest.json)")
    p.set_defaults(func=cmd_embed)

    p = with_spec(sub.add_parser("dynamics", help="training dynamics of the training set (data maps, EL2N, ...)"))
    p.add_argument("--out", required=True, help="output folder (probs.npy, loss.npy, labels.npy, manifest.json)")
    p.set_defaults(func=cmd_dynamics)

    p = sub.add_parser("cluster", help="cluster saved embeddings")
    p.add_argument("--embeddings", required=True, help="folder written by tis-ray embed")
    p.add_argument("--algorithm", default="kmeans", choices=["kmeans", "dbscan"])
    p.add_argument("--n-clusters", type=int, help="KMeans clusters (default: the kmeans sampler's, 16)")
    p.add_argument("--method", default="refine", choices=["refine", "lloyd", "minibatch"],
                   help="CPU KMeans: minibatch + 2 Lloyd passes (default), full Lloyd, or minibatch only")
    p.add_argument("--eps", type=float, help="DBSCAN neighbourhood radius (default: the dbscan sampler's, 0.2)")
    p.add_argument("--min-samples", type=int, help="DBSCAN core point neighbours (default 50)")
    p.add_argument("--metric", help="DBSCAN distance metric: euclidean (default) or cosine")
    p.add_argument("--normalize", default="none", choices=["none", "l2"], help="l2: unit-length rows first")
    p.add_argument("--k-distance", action="store_true",
                   help="DBSCAN: write the k-distance plot and print the knee's eps instead of clustering")
    p.add_argument("--backend", default="auto", choices=["auto", "cuml", "sklearn"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cluster-output-path", required=True, help="output folder")
    p.set_defaults(func=cmd_cluster)

    p = with_spec(sub.add_parser("sweep", help="run a sweep with Ray Tune"))
    p.add_argument("--address", help="Ray cluster address ('auto' for the running cluster); default: local Ray")
    p.add_argument("--resume", action="store_true", help="continue an interrupted sweep")
    p.add_argument("--num-cpus", type=int, help="CPUs local Ray may use (default: all)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the trials, resources and shared preparation, then stop (no Ray, nothing written)")
    p.set_defaults(func=cmd_sweep)

    p = with_spec(sub.add_parser("plan", help="seeds each comparison needs to detect a difference (before the sweep)"))
    p.add_argument("--pilot", help="a finished run directory or exported table whose paired spread replaces the "
                                   "defaults (the spread of 100 BERT-base MNLI fine-tunes)")
    p.add_argument("--difference", type=float, default=1.0, help="MNLI difference to detect, points (default 1)")
    p.add_argument("--hans-difference", type=float, default=5.0, help="HANS difference to detect, points (default 5)")
    p.add_argument("--power", type=float, default=0.8, help="probability of detecting it (default 0.8)")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("attribute", help="datamodels and LDS from a run's random-subset trials")
    p.add_argument("run_dir", help="run directory (local path or URI) with many random-subset trials of one pool")
    p.add_argument("--target", action="append", default=[],
                   help="what to attribute: a results-table metric (mnli_m/acc), margin:SET[/group value] or "
                        "examples:SET:i,j,k; repeatable (default: MNLI-m, HANS, HANS non-entailed per heuristic)")
    p.add_argument("--score", action="append", default=[], metavar="NAME=PATH.npy",
                   help="an imported score to check by its LDS (e.g. from TRAK): [pool] or [evaluation examples, pool]; "
                        "its manifest.json's fitted_on_trials keeps the trials it saw out of its LDS; repeatable")
    p.add_argument("--sampler", default="random", help="the sampler type of the subset trials (default random)")
    p.add_argument("--estimator", default="ridge", choices=["ridge", "lasso"],
                   help="ridge (default: every effect kept) or lasso (the datamodels paper's: most effects 0)")
    p.add_argument("--per-example", action="store_true",
                   help="also fit a datamodel per evaluation example of each margin target (ridge, one multi-output "
                        "fit) and give every score its per-example LDS (Park et al. 2023)")
    p.set_defaults(func=cmd_attribute)

    p = sub.add_parser("export", help="results table of a run directory")
    p.add_argument("run_dir", help="run directory: a local path or a URI (s3://bucket/runs/NAME?...)")
    p.add_argument("--format", default="parquet", choices=["parquet", "csv"])
    p.add_argument("--per-epoch", action="store_true", help="a row per trial-epoch")
    p.add_argument("--out", help="output file (default: RUN_DIR/results[_epochs].FORMAT)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("schema", help="the JSON Schema of spec files, for YAML editors")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("status", help="a sweep's trials by state with their latest metrics, elapsed time and ETA")
    p.add_argument("run_dir", help="run directory (local path or URI), while the sweep runs or after")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("report", help="tables and figures of a sweep")
    p.add_argument("source", help="run directory or exported table (.parquet / .csv)")
    p.add_argument("--out", help="output folder (default: RUN_DIR/report; ./report/NAME for a URI)")
    p.add_argument("--baseline", help="the sampler the others are compared with: a type (random) or a setting "
                                      "(random(nested=True)); default: the spec's report.baseline, random")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("demo-task", help="write synthetic task files to try `data.source: hub | files` offline")
    p.add_argument("folder", help="where to write them (experiments/own_task_demo.yaml reads ./demo-task)")
    p.add_argument("--n-train", type=int, default=800, help="training examples per task")
    p.set_defaults(func=cmd_demo_task)

    p = sub.add_parser("doctor", help="Python, torch, CUDA, GPUs, cuML / CuPy, Ray: what runs here, what would break")
    p.add_argument("--address", help="also list the nodes and GPUs of the Ray cluster at this address ('auto')")
    p.set_defaults(func=cmd_doctor)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `tis-ray`; returns the exit status (2 for user errors)."""
    parser = build_parser()
    argcomplete.autocomplete(parser)  # answers the shell's completion request and exits; otherwise does nothing
    args = parser.parse_args(argv)
    logs.setup(verbose=args.verbose)
    try:
        if not sys.stderr.isatty():  # their bars are \r-redrawn lines in a log file; tis_ray logs its own progress
            logs.no_third_party_bars()  # before the Hub's first import, which reads it
        import datasets

        if not sys.stderr.isatty():
            datasets.disable_progress_bars()
        return args.func(args)
    except BrokenPipeError:  # `tis-ray sweep ... --dry-run | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at interpreter exit
        return 0
    except TisRayError as exc:
        print(f"tis-ray: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tis-ray: interrupted; continue a sweep with --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
