"""Peak memory and time of the commands that read a run's own dataset splits (``evaluate``,
``coefficients``, ``explain``) and of ``predict`` over many files, for one or more copies
of the package's source, on a synthetic dataset of long clips.

    python benchmarks/run_commands_memory.py --work DIR [--code SRC ...] [--clips 600]
        [--seconds 30] [--rounds 2]

The first call writes a synthetic dataset into ``DIR/data`` (``--clips`` clips of
``--seconds`` s), fills ``DIR/cache`` and trains a joint run of the ``small`` preset for one
epoch into ``DIR/run``; later calls reuse them. Each command then runs in a fresh process,
``PYTHONPATH=SRC`` (default: this checkout), one torch/OpenMP thread (the peak of a
multithreaded run varies between identical runs by up to 2x), alternating the sources over
``--rounds`` rounds. ``RUN/predictions/`` is removed before each source's round, so the
first ``explain`` and ``coefficients`` of a round predict the run's splits and the second
(``explain2``, ``coefficients2``) may read them back. Prints a Markdown table: seconds and the
largest resident memory of the command's process (``ru_maxrss`` from ``wait4``), per round.
"""
from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def midlevel(src: Path, args: list[str]) -> tuple[float, float, int]:
    """Run ``python -m midlevel ARGS`` with ``src`` first on the path: (seconds, peak MB, rc)."""
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "midlevel", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - t, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def prepare(work: Path, clips: int, seconds: float) -> None:
    """The dataset, its feature cache and a trained joint run (made once)."""
    data, cache, run = work / "data", work / "cache", work / "run"
    steps = [(data / "spec.yaml", ["synth", "--out", str(data), "--n-clips", str(clips),
                                   "--duration", str(seconds), "--quiet"]),
             (work / "cache.filled", ["features", str(data / "spec.yaml"), "--cache", str(cache),
                                 "--quiet"]),
             (run / "model.pt", ["train", str(data / "spec.yaml"), "--out", str(run), "--mode",
                                 "joint", "--preset", "small", "--epochs", "1", "--cache",
                                 str(cache), "--quiet", "--overwrite"])]
    for done, args in steps:
        if not done.exists():
            seconds_taken, _, rc = midlevel(ROOT, args)
            if rc:
                sys.exit(f"midlevel {' '.join(args)} failed ({rc})")
            if done.name == "cache.filled":
                done.touch()
            print(f"{args[0]}: {seconds_taken:.0f} s", file=sys.stderr)


def commands(work: Path) -> list[tuple[str, list[str]]]:
    run, cache, out = work / "run", str(work / "cache"), work / "out"
    with open(run / "splits.csv") as fh:
        test_clip = next(r["clip"] for r in csv.DictReader(fh) if r["split"] == "test")
    audio = sorted((work / "data" / "audio").glob("*.wav"))
    clip = str(next(p for p in audio if p.stem == test_clip))
    c = ["--cache", cache, "--quiet"]
    return [("evaluate (test)", ["evaluate", str(run), *c]),
            ("evaluate (train)", ["evaluate", str(run), "--split", "train", *c]),
            ("coefficients", ["coefficients", str(run), *c, "--out", str(out / "coef")]),
            ("coefficients2", ["coefficients", str(run), *c, "--out", str(out / "coef")]),
            ("explain", ["explain", str(run), clip, *c, "--out", str(out / "explain")]),
            ("explain2", ["explain", str(run), clip, *c, "--out", str(out / "explain")]),
            (f"predict ({min(200, len(audio))} files)",
             ["predict", str(run), *map(str, audio[:200]), "--out",  # no --quiet before
              str(out / "predict.csv")])]                                 # 2026-12-07


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="dataset, cache and run")
    parser.add_argument("--code", type=Path, action="append",
                        help="a source tree to measure (repeatable; default this checkout)")
    parser.add_argument("--clips", type=int, default=600)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    sources = args.code or [ROOT]
    prepare(args.work, args.clips, args.seconds)
    rows = {}
    for r in range(args.rounds):
        for src in sources:
            shutil.rmtree(args.work / "run" / "predictions", ignore_errors=True)
            for name, cmd in commands(args.work):
                sec, mb, rc = midlevel(src, cmd)
                rows.setdefault((name, str(src)), []).append(
                    f"{sec:.1f} s, {mb:.0f} MB" + (f" (exit {rc})" if rc else ""))
    print("| command | source | " + " | ".join(f"round {r + 1}" for r in range(args.rounds))
          + " |\n|---|---|" + "---|" * args.rounds)
    for (name, src), cells in rows.items():
        print(f"| {name} | {src} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
