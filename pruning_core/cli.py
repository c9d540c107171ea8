"""Command line: ``python -m pruning_core COMMAND [options]``.

Commands:

- ``prepare-demo``: fine-tune the embedded demo model (all-MiniLM-L6-v2 on SST-2) and write its card.
- ``evaluate``: masked evaluation of a model on a dataset: accuracy, loss, agreement with the full model.
- ``prune``: physically remove the heads of a scheme and save the smaller model (optionally time it).
- ``attention``: per-head attention maps of one input, or per-head attention statistics over a dataset.
- ``analyze``: every per-head evidence (importance, stability, similarity, roles, alignment) as a bundle folder.
- ``curves``: accuracy/loss/agreement against the number of heads pruned, per strategy, with the knee table.
- ``report``: prune a scheme for real: checkpoint, masked-vs-pruned check, size and latency (JSON + HTML).
- ``recover``: distil a pruned (and repaired) model from its full model; writes the compensation of the kept heads.
- ``ship-demo``: compute the demo's analysis and default curves into the package, so the app opens them at once.

Every command has ``--help`` and ``--json``; expected failures print one clear line and exit 2.
The CLI opens whatever model and data the user names: it does not apply the server's source
policy (``BHPVAS_MODEL_ROOTS``, ``BHPVAS_ALLOW_HUB``, ``BHPVAS_DATA_ROOTS``), which is for the app.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .defaults import DEFAULT_STRATEGIES


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import warnings

    warnings.filterwarnings("ignore")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _add_model(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="demo", help="'demo', a local model folder, or a hub id (default: demo)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument(
        "--precision", default=None, choices=("fp32", "bf16", "fp16"), help="evaluation autocast (default: bf16 on CUDA, fp32 on a CPU)"
    )


def _add_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default="sst2", help="'sst2' (bundled dev set), 'sst2:train', a CSV/TSV/JSONL file, or a hub id")
    parser.add_argument("--text-column", default=None, help="text column (inferred when unambiguous)")
    parser.add_argument("--text-pair-column", default=None, help="second text column for sentence pairs")
    parser.add_argument("--label-column", default=None, help="label column (inferred when unambiguous)")
    parser.add_argument("--split", default="validation", help="split of a hub dataset (default: validation)")
    parser.add_argument("--max-rows", type=int, default=None, help="use only the first N rows")


def _add_calibration(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--calibration",
        default=None,
        help="calibration set for scores and learned orders: a CSV/TSV/JSONL file or 'sst2:train' "
        "(default: 2,000 sampled SST-2 train sentences for the bundled sst2, else the data itself)",
    )
    parser.add_argument(
        "--calibration-fraction", type=float, default=None, help="hold out this share of the data to calibrate on (evaluate on the rest)"
    )


def _add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pruning_core", description="bhpvas: analyse and prune attention heads of BERT-family classifiers."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from .demo import Recipe as DemoRecipe

    demo_recipe = DemoRecipe()
    demo = sub.add_parser("prepare-demo", help="fine-tune the embedded demo model (all-MiniLM-L6-v2 on SST-2)")
    demo.add_argument("--out", default=None, help="output folder (default: the package's demo folder)")
    demo.add_argument("--epochs", type=float, default=demo_recipe.epochs)
    demo.add_argument("--lr", type=float, default=demo_recipe.learning_rate)
    demo.add_argument("--batch-size", type=int, default=demo_recipe.batch_size)
    demo.add_argument("--max-length", type=int, default=demo_recipe.max_length)
    demo.add_argument("--seed", type=int, default=demo_recipe.seed)
    demo.add_argument(
        "--held-out-rows",
        type=int,
        default=demo_recipe.held_out_rows,
        help="train sentences kept out to choose the checkpoint (0: keep the last step)",
    )
    demo.add_argument(
        "--batching", default="bucketed", choices=("bucketed", "shuffled"), help="batches of similar lengths, or plain shuffled"
    )
    demo.add_argument("--train-rows", type=int, default=None, help="use only the first N training rows (for a quick try)")
    _add_output(demo)

    ship = sub.add_parser("ship-demo", help="compute the demo's analysis and default curves into the package (the app opens them at once)")
    ship.add_argument("--out", default=None, help="output folder (default: the package's demo_results folder)")
    ship.add_argument("--precision", default=None, choices=("fp32", "bf16"), help="default: the hardware's (bf16 where native)")
    ship.add_argument("--no-repair", action="store_true", help="without the + repair curves")
    _add_output(ship)

    ev = sub.add_parser("evaluate", help="masked evaluation: accuracy, loss, agreement with the full model")
    _add_model(ev)
    _add_data(ev)
    ev.add_argument("--scheme", default=None, help="scheme JSON file whose heads are gated off")
    ev.add_argument("--no-cache", action="store_true", help="recompute instead of reading the result cache")
    _add_output(ev)

    pr = sub.add_parser("prune", help="physically remove the heads of a scheme and save the model")
    _add_model(pr)
    pr.add_argument("--scheme", required=True, help="scheme JSON file")
    pr.add_argument("--out", required=True, help="output folder for the pruned model")
    pr.add_argument("--latency", action="store_true", help="also measure full vs pruned latency (batch 1/32, length 64/128)")
    pr.add_argument(
        "--repair",
        action="store_true",
        help="refit each layer's attention and feed-forward output projections on the calibration set first",
    )
    _add_data(pr)
    _add_calibration(pr)
    _add_repair(pr)
    _add_output(pr)

    at = sub.add_parser("attention", help="attention maps of one input, or per-head statistics over a dataset")
    _add_model(at)
    _add_data(at)
    at.add_argument("--text", default=None, help="one input text: print its per-head attention")
    at.add_argument("--text-pair", default=None, help="second text of a sentence pair")
    at.add_argument("--layer", type=int, default=None, help="only this layer (with --text)")
    at.add_argument("--head", type=int, default=None, help="only this head (with --text)")
    at.add_argument("--scheme", default=None, help="scheme JSON file whose heads are gated off")
    _add_output(at)
    an = sub.add_parser("analyze", help="all per-head evidence (importance, stability, similarity, roles, alignment) as a bundle")
    _add_model(an)
    _add_data(an)
    an.add_argument("--out", default=None, help="folder for the bundle (bundle.json, scores.csv, arrays.npz)")
    an.add_argument("--similarity-tokens", type=int, default=4096, help="tokens sampled for CKA (default 4096, at least 2000 advised)")
    an.add_argument("--role-sentences", type=int, default=100, help="sentences N for the role t-tests (default 100)")
    an.add_argument("--alignment-sentences", type=int, default=500, help="sentences for dependency alignment (default 500)")
    an.add_argument("--tau", type=float, default=3.0, help="role threshold on the mean sieve score (default 3)")
    an.add_argument("--seed", type=int, default=0)
    an.add_argument("--no-leave-one-out", action="store_true", help="skip the leave-one-out ablation of every head")
    _add_calibration(an)
    _add_output(an)

    cu = sub.add_parser("curves", help="accuracy/loss/agreement against heads pruned for every strategy, and the knee table")
    _add_model(cu)
    _add_data(cu)
    cu.add_argument("--out", default=None, help="write the curves as JSON to this file")
    cu.add_argument("--step", type=float, default=0.1, help="step as a fraction of all heads (default 0.1)")
    cu.add_argument("--random-seeds", type=int, default=5)
    cu.add_argument("--dsp-steps", type=int, default=200, help="optimisation steps of differentiable subset pruning")
    cu.add_argument("--strategies", default=None, help="comma-separated subset of: " + ", ".join(DEFAULT_STRATEGIES))
    cu.add_argument("--no-refine", action="store_true", help="do not evaluate every K around the 1-point and significance knees")
    cu.add_argument("--repair", action="store_true", help="add each strategy's repaired curve (every point repaired, then evaluated)")
    _add_calibration(cu)
    _add_repair(cu)
    _add_output(cu)

    rp = sub.add_parser("report", help="prune a scheme for real: checkpoint, masked-vs-pruned check, size and latency (JSON + HTML)")
    _add_model(rp)
    _add_data(rp)
    rp.add_argument("--scheme", required=True, help="scheme JSON file")
    rp.add_argument("--out", required=True, help="output folder (report.json, report.html, model/)")
    rp.add_argument("--repeats", type=int, default=7, help="timed repeats per latency cell")
    _add_output(rp)

    rc = sub.add_parser("recover", help="recovery fine-tune: distil a pruned model folder from the full model (resumable)")
    rc.add_argument("--model", required=True, help="a pruned model folder (written by prune or report)")
    rc.add_argument("--out", required=True, help="output folder for the fine-tuned pruned model")
    rc.add_argument("--teacher", default=None, help="the full model (default: the source recorded in the pruned folder)")
    rc.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    rc.add_argument("--precision", default=None, choices=("fp32", "bf16", "fp16"), help="evaluation autocast")
    _add_data(rc)
    _add_calibration(rc)
    _add_repair(rc)
    rc.add_argument("--steps", type=int, default=300, help="optimisation steps (default 300)")
    rc.add_argument("--batch-size", type=int, default=32)
    rc.add_argument("--lr", type=float, default=3e-5)
    rc.add_argument("--temperature", type=float, default=2.0, help="distillation temperature (default 2)")
    rc.add_argument("--hidden-weight", type=float, default=0.0, help="weight of the hidden-state loss (default 0: logits only)")
    rc.add_argument("--no-compensation", action="store_true", help="skip each kept head's importance before and after")
    _add_output(rc)
    return parser


def _add_repair(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--repair-variant",
        default="full",
        choices=("full", "attention", "scale"),
        help="least squares on the attention and feed-forward output projections (full), on the attention one only, or one scale per head",
    )
    parser.add_argument(
        "--repair-target",
        default="attention",
        choices=("attention", "residual"),
        help="match the full model's attention output (default), or that output plus the residual stream's drift from below",
    )


@contextmanager
def _progress(args: argparse.Namespace, description: str) -> Iterator[Callable[[float, str], None]]:
    """A progress callback drawing a bar on stderr (unless --no-progress, or --json off a terminal), closed on exit."""
    from .progress import tqdm_progress

    report, close = tqdm_progress(description, disable=args.no_progress or not sys.stderr.isatty() and args.json)
    try:
        yield report
    finally:
        close()


def _load(args: argparse.Namespace):
    from .loading import load_model

    return load_model(args.model, device=args.device, precision=args.precision)


def _dataset(args: argparse.Namespace):
    from .data import load_dataset
    from .errors import DataError
    from .policy import SourcePolicy

    if args.max_rows is not None and args.max_rows < 1:
        raise DataError(f"--max-rows must be at least 1, not {args.max_rows}.")
    return load_dataset(
        args.data,
        args.text_column,
        args.text_pair_column,
        args.label_column,
        split=args.split,
        max_rows=args.max_rows,
        policy=SourcePolicy.from_env(),
    )


def _data_sets(args: argparse.Namespace):
    from .calibration import data_sets

    return data_sets(args.data, _dataset(args), args.calibration, args.calibration_fraction)


def _scheme(args: argparse.Namespace, lm):
    from .schemes import Scheme

    if not args.scheme:
        return None
    scheme = Scheme.from_file(args.scheme)
    scheme.check_fits(lm.num_layers, lm.num_heads)
    return scheme


def cmd_prepare_demo(args: argparse.Namespace) -> dict[str, Any]:
    from .demo import DEMO_DIR, Recipe, prepare_demo

    recipe = Recipe(
        seed=args.seed,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        max_length=args.max_length,
        train_rows=args.train_rows,
        batching=args.batching,
        held_out_rows=args.held_out_rows,
    )
    with _progress(args, "fine-tuning demo") as report:
        card = prepare_demo(Path(args.out) if args.out else DEMO_DIR, recipe, report)
    return card


def cmd_evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from .cache import DiskCache
    from .evaluation import evaluate

    lm = _load(args)
    dataset = _dataset(args)
    scheme = _scheme(args, lm)
    with _progress(args, "evaluating") as report:
        result = evaluate(lm, dataset, scheme, progress=report, cache=DiskCache(enabled=not args.no_cache))
    return {"model": args.model, "data": dataset.name, **result.summary(), "heads_total": lm.num_layers * lm.num_heads}


def cmd_prune(args: argparse.Namespace) -> dict[str, Any]:
    from .efficiency import compare_efficiency, count_parameters, encoder_macs, paired_efficiency
    from .outputs import atomic_folder, check_target
    from .pruning import prune_heads, save_pruned

    out = Path(args.out)
    check_target(out)
    lm = _load(args)
    scheme = _scheme(args, lm)
    extra: dict[str, Any] = {"base_model": str(Path(args.model).resolve()) if Path(args.model).exists() else args.model}
    if args.repair:
        from .repair import repair_and_prune

        with _progress(args, "repairing") as report:
            pruned, repair = repair_and_prune(
                lm, scheme, _calibration(args), progress=report, variant=args.repair_variant, target=args.repair_target
            )
        extra["repair"] = repair.summary()
    else:
        pruned = prune_heads(lm, scheme)
    with atomic_folder(out) as staging:
        save_pruned(pruned, staging, extra)
    result: dict[str, Any] = {
        "model": args.model,
        "out": str(out),
        **extra,
        "heads_removed": len(scheme.pruned),
        "heads_kept": int(sum(len(k) for k in pruned.kept_heads)),
        "parameters_full": count_parameters(lm),
        "parameters_pruned": count_parameters(pruned),
        "macs_full_len128": encoder_macs(lm, 128),
        "macs_pruned_len128": encoder_macs(pruned, 128),
    }
    if args.latency:
        result["latency"] = compare_efficiency(*paired_efficiency(lm, pruned))
    return result


def _calibration(args: argparse.Namespace):
    """The calibration set of the command's data (see :func:`pruning_core.calibration.data_sets`)."""
    return _data_sets(args).calibration


def cmd_attention(args: argparse.Namespace) -> dict[str, Any]:
    from .attention import PROFILE_NAMES, attention_maps, attention_statistics

    lm = _load(args)
    scheme = _scheme(args, lm)
    if args.text is not None:
        sample = attention_maps(lm, [args.text], [args.text_pair] if args.text_pair else None, scheme)[0]
        layers = [args.layer] if args.layer is not None else range(lm.num_layers)
        heads = [args.head] if args.head is not None else range(lm.num_heads)
        for name, value, limit in (("layer", args.layer, lm.num_layers), ("head", args.head, lm.num_heads)):
            if value is not None and not 0 <= value < limit:
                from .errors import BhpvasError

                raise BhpvasError(f"--{name} {value} is out of range: the model has {limit} {name}s (counting from 0).")
        maps = {f"{layer}.{head}": np.round(sample.attention[layer, head], 4).tolist() for layer in layers for head in heads}
        return {"tokens": sample.tokens, "attention": maps}
    dataset = _dataset(args)
    with _progress(args, "attention statistics") as report:
        stats = attention_statistics(lm, dataset, scheme, progress=report)
    heads = []
    for layer in range(lm.num_layers):
        for head in range(lm.num_heads):
            profile = stats.mean_profile[layer, head]
            heads.append(
                {
                    "layer": layer,
                    "head": head,
                    "entropy": round(float(stats.mean_entropy[layer, head]), 4),
                    "distance": round(float(stats.mean_distance[layer, head]), 4),
                    **{f"to_{n}": round(float(v), 4) for n, v in zip(PROFILE_NAMES, profile, strict=False)},
                }
            )
    return {"data": dataset.name, "n": len(dataset), "heads": heads}


def cmd_analyze(args: argparse.Namespace) -> dict[str, Any]:
    from .analysis import AnalysisParams, analyze

    lm = _load(args)
    sets = _data_sets(args)
    params = AnalysisParams(
        args.similarity_tokens, args.role_sentences, args.alignment_sentences, args.tau, args.seed, not args.no_leave_one_out
    )
    with _progress(args, "analysis") as report:
        bundle = analyze(lm, sets.calibration, params, progress=report, calibration=sets.calibration_description)
    result = bundle.summary()
    if args.out:
        from .results import write_results

        result["out"] = str(write_results(args.out, lm, sets.evaluation, sets.calibration, bundle, None, "python -m pruning_core analyze"))
    return result


def cmd_curves(args: argparse.Namespace) -> dict[str, Any]:
    from .analysis import analyze
    from .curves import CurveParams, compute_curves

    lm = _load(args)
    sets = _data_sets(args)
    strategies = tuple(s.strip() for s in args.strategies.split(",")) if args.strategies else DEFAULT_STRATEGIES
    params = CurveParams(args.step, args.random_seeds, not args.no_refine, args.dsp_steps, strategies)
    with _progress(args, "analysis + curves") as report:
        from .progress import scaled

        end = 0.5 if args.repair else 1.0
        bundle = analyze(lm, sets.calibration, progress=scaled(report, 0.0, 0.2 * end), calibration=sets.calibration_description)
        curves = compute_curves(
            lm,
            sets.evaluation,
            bundle,
            params,
            progress=scaled(report, 0.2 * end, end),
            calibration=sets.calibration,
            descriptions=sets.describe(),
        )
        if args.repair:
            from .repair_curves import add_repaired_curves

            add_repaired_curves(
                lm,
                sets.evaluation,
                sets.calibration,
                curves,
                variant=args.repair_variant,
                target=args.repair_target,
                progress=scaled(report, end, 1.0),
            )
    result = {
        "model": args.model,
        "data": sets.evaluation.name,
        "calibration": curves.calibration,
        "evaluation": curves.evaluation,
        "signal": {name: verdict.to_dict() for name, verdict in bundle.signal.items()},
        "full_accuracy": curves.full_accuracy,
        "evaluations": curves.evaluations,
        "seconds": round(curves.seconds, 1),
        "knee": curves.knee_table(),
        "extra": {k: v for k, v in curves.extra.items() if k != "repaired"},
    }
    if args.repair:
        from .repair_curves import repaired_knee_table

        result["knee_repaired"] = repaired_knee_table(curves, result["knee"])
    if args.out and str(args.out).endswith(".json"):
        result["out"] = str(curves.save(args.out))
    elif args.out:
        from .results import write_results

        result["out"] = str(write_results(args.out, lm, sets.evaluation, sets.calibration, bundle, curves, "python -m pruning_core curves"))
    return result


def cmd_report(args: argparse.Namespace) -> dict[str, Any]:
    from .errors import BhpvasError
    from .outputs import check_target
    from .report import pruning_report

    if args.repeats < 1:
        raise BhpvasError(f"--repeats must be at least 1 (timed runs per latency cell), not {args.repeats}.")
    check_target(Path(args.out))
    lm = _load(args)
    dataset = _dataset(args)
    scheme = _scheme(args, lm)
    with _progress(args, "pruning report") as report:
        result = pruning_report(lm, dataset, scheme, args.out, repeats=args.repeats, progress=report)
    result["out"] = str(Path(args.out))
    return result


def cmd_ship_demo(args: argparse.Namespace) -> dict[str, Any]:
    from .results import DEMO_RESULTS, write_demo_results

    with _progress(args, "demo analysis + curves") as report:
        out = write_demo_results(
            Path(args.out) if args.out else DEMO_RESULTS, precision=args.precision, progress=report, repair=not args.no_repair
        )
    return {"out": str(out), "manifest": json.loads((out / "manifest.json").read_text())}


def cmd_recover(args: argparse.Namespace) -> dict[str, Any]:
    import json as json_module

    from .errors import BhpvasError
    from .evaluation import evaluate
    from .loading import PRUNING_FILE, load_model
    from .outputs import atomic_folder, check_target
    from .pruning import save_pruned
    from .recovery import RecoveryParams, compensation, recover

    out = Path(args.out)
    check_target(out)
    student = _load(args)
    if not student.is_pruned:
        raise BhpvasError(f"{args.model} is not a pruned model folder; prune it first (`prune --repair --out DIR`).")
    meta = json_module.loads((Path(args.model) / PRUNING_FILE).read_text())
    source = args.teacher or meta.get("base_model")
    if not source:
        raise BhpvasError(f"{args.model} does not record its full model; give it with --teacher.")
    teacher = load_model(source, device=args.device, precision=args.precision)
    if teacher.shape != student.shape:
        raise BhpvasError(f"The teacher {teacher.name} has {teacher.shape} heads (layers, heads); the pruned model has {student.shape}.")
    calibration = _calibration(args)
    params = RecoveryParams(args.steps, args.batch_size, args.lr, args.temperature, args.hidden_weight)
    with _progress(args, "recovery") as report:
        outcome = recover(student, teacher, calibration, params, progress=report)
    dataset = _dataset(args)
    result: dict[str, Any] = {
        "model": args.model,
        "teacher": teacher.name,
        "data": dataset.name,
        "accuracy_full": evaluate(teacher, dataset).accuracy,
        "accuracy_before": evaluate(student, dataset).accuracy,
        "accuracy_after": evaluate(outcome.model, dataset).accuracy,
        "recovery": {**outcome.summary(), "calibration_fingerprint": calibration.fingerprint},
    }
    extra = {k: v for k, v in meta.items() if k in ("repair",)}
    with atomic_folder(out) as staging:
        save_pruned(outcome.model, staging, {**extra, "base_model": source, "recovery": result["recovery"]})
    if not args.no_compensation:
        comp = compensation(student, outcome.model, calibration).to_dict()
        (out / "compensation.json").write_text(json_module.dumps(comp) + "\n")
        result["compensation"] = comp["summary"]
    result["out"] = str(out)
    return result


def _print_human(command: str, result: dict[str, Any]) -> None:
    if command == "evaluate":
        print(
            f"{result['data']}: accuracy {result['accuracy']:.4f}  loss {result['loss']:.4f}  agreement {result['agreement']:.4f}  "
            f"n={result['n']}  heads pruned {result['heads_pruned']}/{result['heads_total']}  ({result['seconds']:.2f} s{', cached' if result['from_cache'] else ''})"
        )
        for notice in result["notices"]:
            print(f"note: {notice}")
    elif command == "prune":
        print(f"saved pruned model to {result['out']}: {result['heads_kept']} heads kept, {result['heads_removed']} removed")
        if "repair" in result:
            repair = result["repair"]
            print(
                f"repaired ({repair['variant']}) on {repair['calibration']}, {repair['calibration_tokens']} tokens, {repair['seconds']} s"
            )
        print(
            f"parameters {result['parameters_full']:,} -> {result['parameters_pruned']:,}; MACs at length 128 {result['macs_full_len128']:,} -> {result['macs_pruned_len128']:,}"
        )
        for row in result.get("latency", []):
            print(
                f"batch {row['batch_size']:>3} len {row['seq_len']:>3}: {row['full_ms']:.1f} ms -> {row['pruned_ms']:.1f} ms  speed-up {row['speedup']:.2f}x (MACs ceiling {row['macs_ceiling']:.2f}x)"
            )
    elif command == "attention" and "tokens" in result:
        print("tokens:", " ".join(result["tokens"]))
        for key, matrix in result["attention"].items():
            rows = np.asarray(matrix)
            top = [result["tokens"][int(j)] for j in rows.argmax(axis=1)]
            print(f"head {key}: each token attends most to -> {' '.join(top)}")
    elif command == "attention":
        print(f"{'head':>6} {'entropy':>8} {'dist':>6} " + " ".join(f"{n:>6}" for n in ("cls", "sep", "self", "prev", "next", "other")))
        for h in result["heads"]:
            print(
                f"{h['layer']:>3}.{h['head']:<2} {h['entropy']:>8.3f} {h['distance']:>6.2f} "
                + " ".join(f"{h['to_' + n]:>6.3f}" for n in ("cls", "sep", "self", "prev", "next", "other"))
            )
    elif command == "analyze":
        print(f"{result['data']}: {result['heads']} heads analysed; head map by {result['map_method']}")
        for name, ranked in result["ranked"].items():
            print(f"{name:>10}: top {' '.join(ranked['top'])} | bottom {' '.join(ranked['bottom'])}")
        print("roles:", ", ".join(f"{k} {v}" for k, v in result["role_counts"].items()))
        print("spearman:", ", ".join(f"{k} {v}" for k, v in result["spearman"].items()))
        print("seconds:", ", ".join(f"{k} {v}" for k, v in result["timings"].items()))
        if "out" in result:
            print(f"bundle written to {result['out']}")
    elif command == "curves":
        print(
            f"{result['data']}: full accuracy {result['full_accuracy']:.4f}; {result['evaluations']} evaluations in {result['seconds']} s"
        )
        print(f"calibration: {result['calibration']}; evaluation: {result['evaluation']}")
        print(
            f"{'strategy':<28} " + " ".join(f"{name:>22}" for name in ("<=1pt [K interval]", "<=3pt [K interval]", "no sig. drop [K int.]"))
        )
        for row in result["knee"]:
            cells = []
            for kind in ("1pt", "3pt", "nosig"):
                interval = row.get(f"k_{kind}_interval")
                tie = "=" if row.get(f"best_{kind}") else " "
                text = f"{row.get(f'k_{kind}', '-')}{tie} [{interval[0]}-{interval[1]}]" if interval else str(row.get(f"k_{kind}", "-"))
                cells.append(f"{text:>22}")
            print(f"{row['label']:<28} " + " ".join(cells))
        print("'=': the largest knee or tied with it (knee intervals overlap)")
        for name, verdict in result.get("signal", {}).items():
            if not verdict["signal"]:
                print(f"note: {name} carries no signal: {verdict['reason']}")
        if "knee_repaired" in result:
            print(
                f"{'strategy + repair':<28} "
                + " ".join(f"{name:>24}" for name in ("<=1pt [K int.] gain", "<=3pt [K int.] gain", "no sig. drop gain"))
            )
            for row in result["knee_repaired"]:
                cells = []
                for kind in ("1pt", "3pt", "nosig"):
                    interval = row.get(f"k_{kind}_interval_repaired")
                    text = f"{row.get(f'k_{kind}_repaired', '-')}" + (f" [{interval[0]}-{interval[1]}]" if interval else "")
                    if f"gain_{kind}" in row:
                        text += f" {row[f'gain_{kind}']:+d}"
                    cells.append(f"{text:>24}")
                print(f"{row['label']:<28} " + " ".join(cells))
            print("gain: repaired minus plain knee (heads)")
        if "out" in result:
            print(f"curves written to {result['out']}")
    elif command == "report":
        print(
            f"pruned {result['heads_pruned']}/{result['heads_total']} heads: accuracy {result['accuracy']['full']['value']:.4f} -> "
            f"{result['accuracy']['saved']['value']:.4f} (saved checkpoint loaded back, fp32); "
            f"masked vs pruned max |logit diff| {result['max_abs_logit_diff_masked_vs_pruned']:.1e}"
        )
        print(f"parameters {result['parameters_full']:,} -> {result['parameters_pruned']:,}")
        for row in result["latency"]:
            print(
                f"batch {row['batch_size']:>3} len {row['seq_len']:>3}: {row['full_ms']:.1f} ms -> {row['pruned_ms']:.1f} ms  speed-up {row['speedup']:.2f}x (MACs ceiling {row['macs_ceiling']:.2f}x)"
            )
        print(f"report: {result['out']}/report.html, checkpoint: {result['checkpoint']}")
    elif command == "recover":
        rec = result["recovery"]
        print(
            f"{result['data']}: accuracy full {result['accuracy_full']:.4f}; pruned {result['accuracy_before']:.4f} -> "
            f"recovered {result['accuracy_after']:.4f} ({rec['steps_done']} steps, {rec['seconds']} s"
            f"{', resumed at ' + str(rec['resumed_from']) if rec['resumed_from'] else ''})"
        )
        if "compensation" in result:
            print("compensation:", ", ".join(f"{k} {v}" for k, v in result["compensation"].items()))
        print(f"saved to {result['out']}")
    else:
        print(json.dumps(result, indent=2, default=str))


COMMANDS = {
    "prepare-demo": cmd_prepare_demo,
    "evaluate": cmd_evaluate,
    "prune": cmd_prune,
    "attention": cmd_attention,
    "analyze": cmd_analyze,
    "curves": cmd_curves,
    "report": cmd_report,
    "recover": cmd_recover,
    "ship-demo": cmd_ship_demo,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_libraries()
    from .errors import BhpvasError

    started = time.perf_counter()
    try:
        result = COMMANDS[args.command](args)
    except BhpvasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    result.setdefault("wall_seconds", round(time.perf_counter() - started, 3))
    try:
        if args.json:
            print(json.dumps(result, indent=2, default=_json_default))
        else:
            _print_human(args.command, result)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
