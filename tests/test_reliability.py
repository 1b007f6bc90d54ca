"""Doubtful input is named, failed commands write nothing, and interrupted or concurrent work
leaves nothing half-written (generated data throughout)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from conftest import write_tone
from midlevel.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from midlevel.synth.dataset import synthesize
    root = tmp_path_factory.mktemp("doubtful")
    spec = synthesize(root / "data", n_clips=8, seed=3, duration=2.0, n_jobs=1,
                      progress=False)
    return root, spec


def _doubtful_copy(world, tmp_path):
    """A copy of the dataset with one empty rating, one 0.5-s clip and one stray file."""
    _, spec = world
    data = tmp_path / "data"
    shutil.copytree(spec.parent, data)
    table = pd.read_csv(data / "annotations.csv")
    table.loc[2, "tender"] = np.nan
    table.to_csv(data / "annotations.csv", index=False)
    y, sr = sf.read(data / "audio" / f"{table.loc[5, 'clip_id']}.wav")
    sf.write(data / "audio" / f"{table.loc[5, 'clip_id']}.wav", y[: sr // 2], sr)
    write_tone(data / "audio" / "stray.wav")
    return data, table


def test_validate_warns_about_every_doubtful_input_and_exits_zero(world, tmp_path, capsys):
    data, table = _doubtful_copy(world, tmp_path)
    assert main(["validate", str(data / "spec.yaml"), "--window", "1.0", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "OK: no problems found (3 warning(s))" in out
    short = table.loc[5, "clip_id"]
    assert f"clip '{short}'" in err and "0.50 s, shorter than the 1-s window" in err
    assert f"clip '{table.loc[2, 'clip_id']}'" in err and "column 'tender'" in err
    assert "annotations.csv, row 4" in err  # header = row 1, the third data row
    assert "stray.wav" in err and "unreferenced audio" in err


def test_a_file_recorded_at_a_low_rate_is_named(world, tmp_path, capsys):
    """Audit 9b, D2: an 8-kHz file passed validate, train and predict without a word, while 35
    of the front end's 149 bands stayed empty for it (nothing above 4 kHz)."""
    import librosa
    _, spec = world
    data = tmp_path / "data"
    shutil.copytree(spec.parent, data)
    clip = pd.read_csv(data / "annotations.csv")["clip_id"][1]
    y, sr = sf.read(data / "audio" / f"{clip}.wav")
    sf.write(data / "audio" / f"{clip}.wav", librosa.resample(y, orig_sr=sr, target_sr=8000),
             8000)
    assert main(["validate", str(data / "spec.yaml"), "--window", "1.0", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "OK: no problems found (1 warning(s))" in out
    assert (f"{data / 'audio' / f'{clip}.wav'}, clip '{clip}': band-limited audio: recorded "
            f"at 8000 Hz, it holds nothing above 4000 Hz, so 35 of the 149 bands") in err
    # a log-mel project's bands (audit 22c: validate judged every file against the 149)
    assert main(["validate", str(data / "spec.yaml"), "--window", "1.0", "--quiet",
                 "--frontend", "logmel"]) == 0
    assert "of the 128 bands" in capsys.readouterr().err


def test_a_dataset_of_linked_files_is_named_and_scanned_in_its_own_folder(world, tmp_path,
                                                                          capsys):
    """Audio given as symlinks into a bigger folder (audit 7a #2, 7b #7): validate named the
    links' targets and warned about every other file of the folder they point into."""
    _, spec = world
    data = tmp_path / "linked"
    shutil.copytree(spec.parent, data, ignore=shutil.ignore_patterns("audio"))
    (data / "audio").mkdir()
    source = spec.parent / "audio"
    table = pd.read_csv(data / "annotations.csv")
    for clip in table["clip_id"]:
        (data / "audio" / f"{clip}.wav").symlink_to(source / f"{clip}.wav")
    write_tone(source / "outside.wav")  # in the links' folder, not the dataset's
    try:
        assert main(["validate", str(data / "spec.yaml"), "--window", "1.0", "--quiet"]) == 0
        out, err = capsys.readouterr()
        assert "unreferenced audio" not in err and "outside.wav" not in err
        (data / "audio" / f"{table['clip_id'][0]}.wav").unlink()
        assert main(["validate", str(data / "spec.yaml"), "--quiet"]) == 1
        err = capsys.readouterr().err
        assert str(data / "audio" / f"{table['clip_id'][0]}.wav") in err
    finally:
        (source / "outside.wav").unlink()


def test_a_long_list_of_warnings_goes_to_a_csv(world, tmp_path, capsys):
    data, table = _doubtful_copy(world, tmp_path)
    # 15 missing ratings, on clips without segments (a clip its segments rate has the rating)
    segmented = set(pd.read_csv(data / "segments.csv")["clip_id"])
    rows = table.index[~table["clip_id"].isin(segmented)][:3]
    table.loc[rows, ["anger", "fear", "happy", "sad", "tender"]] = np.nan
    table.to_csv(data / "annotations.csv", index=False)
    monkey = tmp_path / "cwd"
    monkey.mkdir()
    old = os.getcwd()
    os.chdir(monkey)
    try:  # every 2-s clip is shorter than a 10-s window: more than 20 warnings with the rest
        assert main(["validate", str(data / "spec.yaml"), "--quiet"]) == 0
    finally:
        os.chdir(old)
    err = capsys.readouterr().err
    assert "warning(s), every one in validate_warnings_synthetic.csv" in err
    table = pd.read_csv(monkey / "validate_warnings_synthetic.csv")
    assert set(table["kind"]) == {"short clip", "missing rating", "unreferenced audio"}
    assert (table["kind"] == "short clip").sum() == 8
    assert (table["kind"] == "missing rating").sum() == 15


@pytest.fixture(scope="module")
def tiny_run(world):
    root, spec = world
    run = root / "run"
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump({"width": 0.125, "crop_seconds": 1.0, "batch_size": 4}))
    # two validation clips: one rating per column gives no selection score (refused)
    tiny = yaml.safe_load(spec.read_text())
    tiny["splits"] = {"seed": 0, "test": {"size": 1}, "validation": {"size": 2}}
    spec = spec.parent / "spec_two_validation.yaml"
    spec.write_text(yaml.safe_dump(tiny))
    assert main(["train", str(spec), "--mode", "joint", "--out", str(run), "--preset", "small",
                 "--epochs", "1", "--config", str(config), "--cache", str(root / "cache"),
                 "--quiet"]) == 0
    return run, root / "cache"


def test_predict_and_explain_warn_about_short_clips(tiny_run, tmp_path, capsys):
    run, cache = tiny_run
    short = write_tone(tmp_path / "short.wav", seconds=0.18)
    assert main(["predict", str(run), str(short)]) == 0
    assert "short.wav: 0.18 s, shorter than the 1-s window: padded with silence" in \
        capsys.readouterr().err
    assert main(["explain", str(run), str(short), "--out", str(tmp_path / "e"), "--cache",
                 str(cache), "--no-timeline", "--quiet"]) == 0
    assert "short" in capsys.readouterr().err


def test_predict_and_explain_name_a_file_recorded_at_a_low_rate(tiny_run, tmp_path, capsys):
    run, cache = tiny_run
    low = write_tone(tmp_path / "low.wav", seconds=2.0, sr=8000)
    assert main(["predict", str(run), str(low)]) == 0
    assert "low.wav: band-limited audio: recorded at 8000 Hz" in capsys.readouterr().err
    assert main(["explain", str(run), str(low), "--out", str(tmp_path / "e"), "--cache",
                 str(cache), "--no-timeline", "--quiet"]) == 0
    assert "low.wav: band-limited audio" in capsys.readouterr().err
    from midlevel.run import load_run
    table = load_run(run).predict([str(low), str(write_tone(tmp_path / "ok.wav", seconds=2.0))])
    assert list(table.attrs["warnings"]) == [str(low)]


def test_band_limit_notes_only_for_waveforms_and_only_with_a_front_end(tiny_run, tmp_path):
    """Re-audit 9, R3 and R4: a spectrogram given with a sample_rate got a false note, and a
    run without a front end crashed on it."""
    from midlevel.run import load_run
    run = load_run(tiny_run[0])
    low = np.sin(np.arange(16000) * 0.3).astype(np.float32)  # 2 s at 8 kHz
    spec = run.spectrogram(str(write_tone(tmp_path / "ok.wav", seconds=2.0))).numpy()
    table = run.predict([low, spec], names=["wave", "spec"], sample_rate=8000)
    assert list(table.attrs["warnings"]) == ["wave"]
    assert "recorded at 8000 Hz" in table.attrs["warnings"]["wave"]
    run.frontend, run._frontend_module = None, None  # a run fitted on spectrograms alone
    assert not run.predict([spec], sample_rate=8000).attrs["warnings"]


def test_a_failed_explain_writes_nothing(tiny_run, tmp_path, capsys):
    """A missing file alone: exit 1, nothing written (no empty tables). Beside a good file:
    the good one is explained completely, the missing one named and skipped (exit 1)."""
    run, cache = tiny_run
    good = write_tone(tmp_path / "good.wav", seconds=2.0)
    missing = tmp_path / "missing.wav"
    alone = tmp_path / "alone"
    assert main(["explain", str(run), str(missing), "--out", str(alone), "--cache", str(cache),
                 "--quiet"]) == 1
    assert "missing.wav" in capsys.readouterr().err
    assert not alone.exists()
    out = tmp_path / "explain"
    assert main(["explain", str(run), str(good), str(missing), "--out", str(out), "--cache",
                 str(cache), "--quiet", "--no-timeline"]) == 1
    assert "missing.wav" in capsys.readouterr().err
    pred = pd.read_csv(out / "predictions.csv")
    assert list(pred["path"]) == [str(good)]


def _fill_script(cache: Path, files: list[Path]) -> str:
    return ("import sys; sys.path.insert(0, %r)\n"
            "from midlevel.data.cache import FeatureCache\n"
            "FeatureCache(%r).fill(%r, jobs=1, progress=False)\n"
            % (str(REPO), str(cache), [str(f) for f in files]))


def _entries_are_whole(cache: Path) -> list[Path]:
    entries = [p for p in cache.rglob("*.npy") if not p.name.startswith(".")]
    for p in entries:
        assert np.load(p).shape[0] == 149
    return entries


@pytest.fixture(scope="module")
def many_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("many")
    return [write_tone(folder / f"t{i}.wav", freq=200 + 40 * i, seconds=3.0) for i in range(12)]


def test_two_processes_filling_one_cache(many_files, tmp_path):
    cache = tmp_path / "cache"
    procs = [subprocess.Popen([sys.executable, "-c", _fill_script(cache, many_files)])
             for _ in range(2)]
    assert all(p.wait(timeout=300) == 0 for p in procs)
    assert len(_entries_are_whole(cache)) == len(many_files)
    assert not [p for p in cache.rglob("*") if p.is_file() and p.name.startswith(".")]


def test_kill_9_during_a_cache_fill_loses_nothing_done(many_files, tmp_path):
    from midlevel.data.cache import FeatureCache
    cache = tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, "-c", _fill_script(cache, many_files)])
    deadline = time.time() + 120
    while time.time() < deadline and not list(cache.rglob("*.npy")):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = _entries_are_whole(cache)  # every entry under a real name is complete
    stats = FeatureCache(cache).fill(many_files, jobs=1, progress=False)
    assert stats.reused == len(done) and stats.computed == len(many_files) - len(done)
    assert len(_entries_are_whole(cache)) == len(many_files)


_KILLED_FILL = """
import os, signal, sys
sys.path.insert(0, %r)
import midlevel.data.cache as cache_module

def descendants(pid):
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    parents[int(entry)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                pass
    found, todo = [], [pid]
    while todo:
        here = todo.pop()
        kids = [p for p, parent in parents.items() if parent == here]
        found += kids
        todo += kids
    return found

class KillOnFirstResult:  # the fill's progress bar: the first file a worker finished
    def __init__(self, *args, **kwargs): pass
    def update(self, *args):
        print(" ".join(map(str, descendants(os.getpid()))), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    def close(self): pass

cache_module.tqdm = KillOnFirstResult
cache_module.WORKER_PROBE_S, cache_module.WORKER_WORTH_S = 0.0, -1.0  # workers for all files
cache_module.FeatureCache(%r).fill(%r, jobs=2, progress=False)
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_kill_9_during_a_fill_in_workers_leaves_no_process_behind(many_files, tmp_path):
    """The workers (and with them the fork server and the resource tracker) end when the
    filling process is killed with -9 (audit 11b #5: they waited on the pool's queue for
    ever, 0.5 GB)."""
    script = _KILLED_FILL % (str(REPO), str(tmp_path / "cache"), [str(f) for f in many_files])
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with open(out, "w") as o, open(err, "w") as e:  # files: a pipe left open would hang here
        code = subprocess.Popen([sys.executable, "-c", script], stdout=o, stderr=e).wait(300)
    assert code == -signal.SIGKILL, err.read_text()
    left = [int(p) for p in out.read_text().split()]
    assert len(left) >= 2  # the workers, at least, were running
    deadline = time.time() + 30
    while time.time() < deadline and any(Path(f"/proc/{p}").exists() for p in left):
        time.sleep(0.2)
    alive = [p for p in left if Path(f"/proc/{p}").exists()
             and Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]
    for p in alive:  # do not leave them to the next test
        os.kill(p, signal.SIGKILL)
    assert not alive


def test_kill_9_during_a_report_leaves_only_whole_files(tiny_run, tmp_path):
    run, cache = tiny_run
    out = tmp_path / "report"
    proc = subprocess.Popen([sys.executable, "-m", "midlevel", "compare", str(run), "--out",
                             str(out), "--cache", str(cache), "--clips", "2", "--background",
                             "2", "--methods", "integrated_gradients", "occlusion", "--n-steps",
                             "4", "--quiet"], cwd=REPO)
    deadline = time.time() + 240
    while time.time() < deadline and not list((out / "figures").glob("*.png")) \
            if out.exists() else time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    import matplotlib.image
    for f in (p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")):
        if f.suffix == ".csv":
            pd.read_csv(f)
        elif f.suffix == ".png":
            assert matplotlib.image.imread(f).size > 0
        elif f.suffix == ".wav":
            assert len(sf.read(f)[0]) > 0
        elif f.suffix == ".html":
            assert f.read_text().rstrip().endswith("</html>")


@pytest.mark.slow
def test_sigterm_to_a_streaming_training_s_process_group_ends_it_cleanly(world, tiny_run,
                                                                         tmp_path):
    """What a batch scheduler's stop does: SIGTERM to the training and its DataLoader workers
    at once. The run keeps its checkpoint, exits 143 with one line, and torch's clean-up does
    not report the workers it found dead (re-audit 9, R2: "Exception ignored in ... DataLoader
    worker is killed by signal")."""
    root, spec = world
    spec = spec.parent / "spec_two_validation.yaml"  # tiny_run's: two validation clips
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"width": 0.125, "crop_seconds": 1.0, "batch_size": 4}))
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "midlevel", "train", str(spec), "--mode",
                             "joint", "--out", str(run), "--preset", "small", "--epochs", "50",
                             "--config", str(config), "--cache", str(root / "cache"),
                             "--max-memory", "1KB", "--workers", "1", "--quiet"], cwd=REPO,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and \
            not (run / "checkpoint.pt").exists():
        time.sleep(0.05)
    time.sleep(0.3)
    assert proc.poll() is None, proc.communicate()[1]
    os.killpg(proc.pid, signal.SIGTERM)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 143, err
    assert "midlevel train: terminated (SIGTERM)" in err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert (run / "checkpoint.pt").exists()
