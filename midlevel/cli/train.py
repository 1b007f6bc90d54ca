"""``midlevel train``, ``midlevel evaluate`` and ``midlevel predict`` (thin layer over
:mod:`midlevel.training` and :class:`midlevel.run.Run`)."""
from __future__ import annotations

import argparse
import sys

from midlevel.cli.common import (FRONTENDS, add_cache_option, add_root_option, file_path,
                                 folder_path, nonnegative_int, open_unit, positive_float,
                                 positive_int, show_log)
from midlevel.data.spec import SPLITS
from midlevel.io import write_csv


def _train(args: argparse.Namespace) -> int:
    from midlevel.training.ddp import first_process
    from midlevel.training.from_spec import train
    show_log()
    run = train(args.spec, args.out, mode=args.mode, root=args.root, config=args.config,
                epochs=args.epochs, preset=args.preset, seed=args.seed, device=args.device,
                resume=args.resume, overwrite=args.overwrite, cache_dir=args.cache,
                progress=not args.quiet, max_memory=args.max_memory, workers=args.workers,
                cpu_bf16=args.bf16,
                frontend={"name": FRONTENDS[args.frontend]} if args.frontend else None)
    if first_process():  # under torchrun every process returns the run
        files = [f for f in ("model.pt", "metrics.csv", "history.csv", "splits.csv",
                             "train.log") if (run.path / f).is_file()]  # an older run: no splits
        print(f"run: {run.path} ({', '.join(files)})")
    return 0


def _refuse_locked(out: str | None) -> None:
    """ArgumentError while another command holds the lock of ``out``'s folder or of a
    folder above it (audit 23a: predict overwrote a running explain's predictions.csv;
    re-audit 23d: and wrote into its clip folders). Checked before the work and again
    before the write."""
    from pathlib import Path

    from midlevel.errors import ArgumentError
    from midlevel.io import LOCK_FILE, lock_held
    if out is None:
        return
    for folder in Path(out).resolve().parents:  # `..` and links as the write will follow
        if lock_held(folder):
            raise ArgumentError(f"--out {out}: another command is writing into {folder} "
                                f"(it holds {folder / LOCK_FILE}); wait for it to end or "
                                f"write elsewhere")


def _write_table(table, out: str) -> None:
    """``table`` to the CSV ``out`` (see :func:`_refuse_locked`)."""
    _refuse_locked(out)
    write_csv(table, out)


def _evaluate(args: argparse.Namespace) -> int:
    from midlevel.training.from_spec import evaluate
    from midlevel.training.metrics import format_table
    show_log()
    _refuse_locked(args.out)
    splits = list(dict.fromkeys(args.split or ["test"]))  # a split asked twice is shown once
    table = evaluate(args.run, args.spec, root=args.root, splits=splits,
                     cache_dir=args.cache, progress=not args.quiet, threshold=args.threshold)
    print(format_table(table))
    if args.out:
        _write_table(table, args.out)
        print(f"written: {args.out}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from midlevel.run import load_run
    show_log()
    _refuse_locked(args.out)
    run = load_run(args.run)
    table = run.predict(args.audio, hop=args.hop,  # logs each file it skips, with the reason
                        progress=not args.quiet)
    errors = table.attrs["errors"]
    if not len(table):  # every file failed: nothing to write (an --out file is kept as it was)
        print("midlevel predict: no file could be predicted; nothing written", file=sys.stderr)
        return 1
    if args.out:
        _write_table(table, args.out)
        print(f"{len(table)} rows written to {args.out}")
    else:
        print(table.to_csv(index=False), end="")
    if errors:
        print(f"midlevel predict: {len(errors)} file(s) could not be read and were skipped "
              f"(named above)", file=sys.stderr)
    return 1 if errors else 0


def register(sub) -> None:
    """Add ``train``, ``evaluate`` and ``predict`` to the ``midlevel`` subparsers."""
    from midlevel.choices import MODES

    p = sub.add_parser("train", help="train a concept bottleneck or a black box",
                       description="Train on the clips of SPEC (features from the cache) and "
                                   "write the run directory OUT: model.pt, config.yaml, "
                                   "splits.csv (each clip's split, which later commands keep "
                                   "when the spec is edited), metrics.csv, history.csv, "
                                   "train.log. Runs unchanged under torchrun.")
    p.add_argument("spec", metavar="SPEC", help="data spec (YAML)")
    p.add_argument("--mode", choices=MODES, default=None,
                   help="blackbox, independent, sequential or joint (default: joint, or the "
                        "config's)")
    p.add_argument("--out", required=True, metavar="RUN", type=folder_path, help="run directory")
    add_root_option(p)
    p.add_argument("--config", metavar="YAML",
                   help="training config (any TrainConfig key; eval_batch_size sets only the "
                        "speed of validation and prediction, bn_batch_size the BatchNorm "
                        "re-estimation batches, part of the model)")
    p.add_argument("--epochs", type=positive_int, help="maximum epochs (default 100)")
    p.add_argument("--preset", choices=["small", "paper"],
                   help="backbone size: the paper's network (default) or a small one for CPU")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--resume", action="store_true",
                   help="continue RUN from its last completed epoch, with its settings and "
                        "roots; --epochs (a higher maximum; one below the epochs done is "
                        "refused), --device, --bf16, --max-memory, --workers and the config "
                        "key eval_batch_size may change. "
                        "Other settings that differ from the run's, a spec of other concepts "
                        "or targets, other clips or splits than the run's splits.csv and "
                        "other ratings, time-varying ratings or audio bytes (the same data "
                        "copied elsewhere is fine; a run of a version that did not record "
                        "them is not checked for them) are refused by name before anything "
                        "is written")
    p.add_argument("--overwrite", action="store_true", help="replace an existing RUN")
    p.add_argument("--device", choices=["cpu", "cuda"],
                   help="cpu (default) or cuda (mixed precision)")
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                   help="bfloat16 autocast for the training steps on a CPU with bf16 units "
                        "(AMX or AVX512-BF16; an error on others): steps about 3x faster where "
                        "measured (a whole fit 1.8x), validation and prediction stay float32 "
                        "(config key cpu_bf16; on cuda, mixed precision is on already); "
                        "--no-bf16 turns this CPU option off, e.g. to resume a bf16 run on a "
                        "CPU without bf16 units (history.csv's bf16 column records each "
                        "epoch's setting; CUDA's mixed precision is the config key amp)")
    p.add_argument("--max-memory", metavar="SIZE",
                   help="memory budget for holding every spectrogram in memory (e.g. 2GB; "
                        "default a quarter of RAM); larger datasets stream from the feature "
                        "cache (the log says which)")
    p.add_argument("--workers", type=nonnegative_int, metavar="N",
                   help="DataLoader worker processes when streaming (default: auto)")
    add_cache_option(p)
    p.add_argument("--frontend", choices=sorted(FRONTENDS),
                   help="front end: the paper's log-filtered spectrogram (default) or log-mel; "
                        "stored in the run, so predictions use it too (a resume keeps the "
                        "run's; another one is refused)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_train)

    p = sub.add_parser("evaluate", help="metrics of a trained run on a split",
                       description="Metrics of RUN per concept and target on a split of SPEC "
                                   "(default: the spec it was trained on), one row each. "
                                   "Columns: split; kind (concept or target); name; n (clips "
                                   "with a rating); r (Pearson); r2 (R^2; for a binary column "
                                   "the Brier skill score); rmse and mae (rating points; "
                                   "binary: root Brier score and mean absolute error of the "
                                   "probability); cal_slope and cal_intercept (the calibration "
                                   "line rating ~ cal_intercept + cal_slope * prediction: 1 "
                                   "and 0 when right in level and scale); accuracy (class "
                                   "columns, and binary ones at --threshold); auc, pr_auc and "
                                   "f1 (binary columns: ROC-AUC, PR-AUC, F1 at --threshold); "
                                   "note (why r or the calibration line is left out: "
                                   "(nearly) constant predictions, constant ratings; what a "
                                   "summary row averages, and over how many columns a value "
                                   "is where some lack it). Summary rows average one sort of column: "
                                   "'mean' when a kind's columns are all ratings, all binary "
                                   "or all classes, else 'mean:ratings', 'mean:binary', "
                                   "'mean:classes'; 'mean:<group>' over a multi-label group's "
                                   "tags. They have no calibration line (it is per column). "
                                   "'-' = not defined.")
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("--spec", metavar="SPEC", help="data spec (default: the run's)")
    add_root_option(p)
    p.add_argument("--split", action="append", choices=list(SPLITS),
                   help="split to evaluate (default test; may be repeated)")
    p.add_argument("--out", metavar="CSV", type=file_path, help="also write the table to CSV")
    p.add_argument("--threshold", type=open_unit, default=0.5, metavar="P",
                   help="binary columns: F1 and accuracy of probability >= P (default 0.5)")
    add_cache_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("predict", help="concept and target predictions for audio files",
                       description="Predict concepts and targets of each AUDIO file (mean over "
                                   "windows), or per window over time with --hop. Files that "
                                   "cannot be decoded are named and skipped (exit status 1). "
                                   "--out may not be one of a run directory's own files.")
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("audio", metavar="AUDIO", nargs="+", help="audio files")
    p.add_argument("--out", metavar="CSV", type=file_path, help="write CSV here (default: stdout)")
    p.add_argument("--hop", type=positive_float, metavar="SEC",
                   help="one row per window every SEC seconds, rounded to whole spectrogram "
                        "frames (32 ms at the usual 31.25 frames/s: 1.0 gives 0.992), with start "
                        "and end in seconds (to the microsecond); the last window is placed on "
                        "the clip's last frames, which read the audio to its end (its `end` is "
                        "the file's duration); a SEC that rounds to no frame is refused")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_predict)
