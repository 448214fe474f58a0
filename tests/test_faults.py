"""Fault tolerance on the demo data: a killed trial worker, an interrupted driver, a trial that raises.

Each sweep runs in a child process, as a user would start it. Only processes these tests started are
signalled, by PID.
"""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest
import yaml
from conftest import small_spec_dict

from tis_ray.export import export_table
from tis_ray.preparation import trial_inputs
from tis_ray.report import build_report
from tis_ray.spec import GridPoint, build_spec
from tis_ray.status import sweep_status
from tis_ray.trial import run_trial

pytestmark = pytest.mark.slow


def start_sweep(tmp_path, raw, *extra):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(raw))
    cmd = [sys.executable, "-m", "tis_ray.cli", "sweep", str(spec), "--num-cpus", "2", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc, timeout=420):
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_tree(proc)
        raise
    return proc.returncode, out


def stop_tree(proc):
    """Kill a child process and everything it started (Ray's local processes), by PID."""
    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    proc.kill()
    for child in family:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass


def wait_for(condition, proc, timeout=240, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc.poll() is not None:
            raise AssertionError(f"the sweep exited ({proc.returncode}) before {what}:\n{proc.stdout.read()[-3000:]}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def interrupt_when(proc, condition, what):
    """Send SIGINT (Ctrl-C) to the sweep once `condition()` holds; returns its exit code and output."""
    try:
        wait_for(condition, proc, what=what)
        proc.send_signal(signal.SIGINT)
        return finish(proc)
    finally:
        if proc.poll() is None:
            stop_tree(proc)


def results_of(storage, trial):
    """Tune's result rows of a trial in a run directory on any storage (lines cut short are skipped)."""
    if not storage.exists(f"{trial}/result.json"):
        return []
    return [json.loads(line) for line in storage.read_text(f"{trial}/result.json").splitlines() if line.endswith("}")]


def results(trial_dir):
    path = trial_dir / "result.json"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def trial_dirs(run_dir, sampler_type=None):
    dirs = [p.parent for p in run_dir.glob("*/params.json")]
    return [d for d in dirs if sampler_type is None
            or json.loads((d / "params.json").read_text())["point"]["sampler"]["type"] == sampler_type]


def worker_pids(trial_dir):
    """The pids of the processes that reported the trial's epochs, as Tune records them in result.json."""
    return [r["pid"] for r in results(trial_dir)]


def assert_same_as_uninterrupted(run_dir, trial_dir, tmp_path):
    """The trial's final metrics equal those of the same trial run start to end without interruption."""
    params = json.loads((trial_dir / "params.json").read_text())
    spec, point = build_spec(params["spec"]), GridPoint.model_validate(params["point"])
    inputs = trial_inputs(json.loads((run_dir / "prepared.json").read_text()), spec, point, run_dir)
    again = run_trial({**params, "prepared": inputs}, tmp_path / f"again_{trial_dir.name}")
    final = results(trial_dir)[-1]
    metrics = [k for k in again if k.startswith(("mnli", "hans"))]
    assert len(metrics) > 10
    assert {k: final[k] for k in metrics} == pytest.approx({k: again[k] for k in metrics}, abs=1e-6)
    assert final["subset_sha256"] == again["subset_sha256"]


def test_killed_worker_is_retried_and_raising_trial_is_reported(tmp_path):
    # indices past the end of the training set: that trial must fail loudly, the sweep must go on
    np.save(tmp_path / "bad.npy", np.arange(1, 2401), allow_pickle=False)
    # 2,400 pairs x 4 epochs of ~2-3 s: the worker is killed during its 3rd epoch, after epoch 2's checkpoint
    raw = small_spec_dict(name="faults", storage_path=str(tmp_path / "runs"), train={"epochs": 4},
                          data={"synthetic": {"n_train": 2400, "n_eval": 200, "hans_per_cell": 20}},
                          resources={"cpu": 1, "max_failures": 1},
                          grid={"seeds": [1], "data_pct": None, "n_examples": [2400], "samplers": [
                              {"type": "random"}, {"type": "indices", "path": str(tmp_path / "bad.npy")}]})
    run_dir = tmp_path / "runs" / "faults"
    proc = start_sweep(tmp_path, raw)
    try:
        trial = wait_for(lambda: next(iter(trial_dirs(run_dir, "random")), None), proc, what="the random trial")
        wait_for(lambda: len(results(trial)) >= 2, proc, what="epoch 2")
        killed = worker_pids(trial)[0]
        psutil.Process(killed).kill()  # the trial's worker process, in its 3rd epoch
        code, out = finish(proc)
    finally:
        if proc.poll() is None:
            stop_tree(proc)
    assert code == 1, out  # the sweep ran to its end with a failed trial: exit 1, one summary line
    assert (f"1 of 2 trials failed: each one's error is in {run_dir}/<trial>/error.txt (tis-ray status {run_dir} "
            "lists them); --resume runs them again") in out.splitlines()
    table = export_table(run_dir).set_index("sampler")
    assert len(table) == 2 and table.index.is_unique
    assert table.loc["random", "status"] == "completed" and table.loc["random", "epoch"] == 4
    assert worker_pids(trial)[-1] != killed  # a second attempt, in another worker, finished the trial
    assert (trial / "error.txt").is_file()  # ... and Tune recorded the first one's death
    # the retry resumed from epoch 2's checkpoint: it ran epochs 3 and 4 only, every epoch appears once
    assert [r["epoch"] for r in results(trial)] == [1, 2, 3, 4]
    assert results(trial)[-1]["resumed_after_epoch"] == 2
    # a finished trial keeps no checkpoint's weights: its last checkpoint folder holds a note alone
    assert [sorted(p.name for p in c.rglob("*")) for c in trial.glob("checkpoint_*")] == [["finished.txt"]]
    assert_same_as_uninterrupted(run_dir, trial, tmp_path)
    assert table.loc["indices", "status"] == "failed"
    assert "indices must be in [0, 2400)" in table.loc["indices", "error"]
    assert "failed" in out and "indices must be in [0, 2400)" in out
    assert not list(run_dir.rglob(".*.tmp"))  # files are renamed into place whole, even around the kill
    assert json.loads((trial / "metrics.json").read_text())["final"]["epoch"] == 4


def test_interrupted_sweep_resumes_without_rerunning_finished_trials(tmp_path):
    # ~5 s per trial, one at a time: slow enough to interrupt between the first and the last
    raw = small_spec_dict(name="resume", storage_path=str(tmp_path / "runs"), train={"epochs": 3},
                          data={"synthetic": {"n_train": 2400, "n_eval": 200, "hans_per_cell": 20}},
                          resources={"cpu": 1, "max_concurrent": 1},
                          grid={"seeds": [1, 2, 3], "data_pct": [0.5], "samplers": [{"type": "random"}]})
    run_dir = tmp_path / "runs" / "resume"
    def one_finished_one_midway():
        dirs = trial_dirs(run_dir)
        done = [d for d in dirs if any(r.get("final") for r in results(d))]
        midway = [d for d in dirs if results(d) and not any(r.get("final") for r in results(d))]
        return done and midway and len(done) < 3

    code, out = interrupt_when(start_sweep(tmp_path, raw), one_finished_one_midway,
                               "a finished trial and one past its first epoch")
    assert code != 0, out
    finished = {d.name: (d / "result.json").read_text() for d in trial_dirs(run_dir)
                if any(r.get("final") for r in results(d))}
    assert 1 <= len(finished) < 3

    # the live view of the interrupted sweep: what finished, the one stopped midway with its epoch (interrupted:
    # no driver runs it, so no ETA either), what is left
    status = sweep_status(str(run_dir))
    states = status.trials.set_index("trial")["state"]
    assert status.counts["done"] == len(finished) and status.counts["interrupted"] == 1
    assert "running" not in status.counts
    assert status.counts.get("pending", 0) == 3 - len(finished) - 1 == len(status.trials) - len(finished) - 1
    assert {name for name, state in states.items() if state == "done"} == set(finished)
    midway_row = status.trials[status.trials["state"] == "interrupted"].iloc[0]
    assert midway_row["epoch"] >= 1 and 0 < midway_row["MNLI-m"] <= 1
    assert status.eta_s is None and status.elapsed_s > 0
    assert "1 interrupted" in status.render() and "ETA" not in status.render()
    index = build_report(str(run_dir), tmp_path / "partial_report")
    assert "**Partial report**: " in index.read_text()

    code, out = finish(start_sweep(tmp_path, raw, "--resume"))
    assert code == 0, out
    table = export_table(run_dir)
    assert len(table) == 3 and table["trial_id"].is_unique and set(table["status"]) == {"completed"}
    assert sorted(table["seed"]) == [1, 2, 3]
    done = sweep_status(str(run_dir))
    assert done.counts == {"done": 3} and done.eta_s is None and "3 trials: 3 done" in done.render()
    for name, text in finished.items():  # finished trials were not rerun: their results are byte-identical
        assert (run_dir / name / "result.json").read_text() == text
    # the trial stopped midway resumed from its last epoch checkpoint: every epoch appears once
    resumed = [d for d in trial_dirs(run_dir) if d.name not in finished]
    for trial in resumed:
        assert [r["epoch"] for r in results(trial)] == [1, 2, 3]
    midway = [d for d in resumed if results(d)[-1]["resumed_after_epoch"] > 0]
    assert midway, "no trial was resumed from a checkpoint"
    assert_same_as_uninterrupted(run_dir, midway[0], tmp_path)
