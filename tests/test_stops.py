"""Where a sweep can stop, without Ray: what `status` says once no driver runs it, when a run directory counts
as started (only --resume continues it), and what --resume says about a changed `tracking:` block."""

import json
import os
import subprocess
import sys

import pytest
import yaml
from conftest import small_spec_dict
from test_export import epoch, trial

from tis_ray.spec import build_spec, dump_spec
from tis_ray.status import DRIVER_FILE, driver_ended, driver_running, driver_started, sweep_status
from tis_ray.storage import Storage
from tis_ray.sweep import changed_tracking, trials_scheduled


@pytest.fixture
def stopped_run(tmp_path):
    """One trial done in 100 s, one failed, one stopped after its first epoch."""
    base = {"budget": {"data_pct": 0.5}, "overrides": {}}
    trial(tmp_path, "done_00000", {**base, "seed": 1, "sampler": {"type": "random"}},
          [epoch(1, 0.4, time_total_s=50), epoch(2, 0.6, final=1, time_total_s=100)])
    trial(tmp_path, "failed_00001", {**base, "seed": 2, "sampler": {"type": "random"}}, [],
          error="tis_ray.errors.SamplingError: budget 9 is more than the 4 examples")
    trial(tmp_path, "midway_00002", {**base, "seed": 3, "sampler": {"type": "random"}}, [epoch(1, 0.5)])
    return tmp_path


def test_without_a_driver_the_stopped_trials_read_interrupted_with_no_eta(stopped_run):
    storage = Storage(stopped_run)
    assert driver_running(storage) is None  # a run directory of an older tis_ray: as before, running
    assert sweep_status(str(stopped_run)).counts["running"] == 1

    driver_started(storage)  # this process is the driver: it runs
    assert driver_running(storage) is True
    running = sweep_status(str(stopped_run))
    assert running.counts == {"done": 1, "running": 1, "failed": 1}
    assert running.eta_s == pytest.approx(100 * 0.5)  # half of the one finished trial's 100 s, one at a time

    driver_ended(storage)  # Ctrl-C, an error, or the end: the driver records it
    assert driver_running(storage) is False
    stopped = sweep_status(str(stopped_run))
    assert stopped.counts == {"done": 1, "interrupted": 1, "failed": 1} and stopped.eta_s is None
    text = stopped.render()
    assert text.splitlines()[0] == "3 trials: 1 done, 0 running, 1 interrupted, 1 failed, 0 pending"
    assert "ETA" not in text
    states = stopped.trials.set_index("trial")["state"]
    assert states["midway_00002"] == "interrupted" and states["failed_00001"] == "failed"
    assert f"failed: failed_00001: {stopped_run}/failed_00001/error.txt" in text.splitlines()
    assert text.splitlines()[-1] == ("interrupted: no driver runs this sweep; 1 trials unfinished: continue it "
                                     "with tis-ray sweep SPEC --resume")


def test_a_driver_killed_on_this_host_reads_as_gone(stopped_run):
    child = subprocess.Popen([sys.executable, "-c",
                              "import sys; from tis_ray.status import driver_started; from tis_ray.storage import "
                              "Storage; driver_started(Storage(sys.argv[1])); print('started', flush=True); "
                              "sys.stdin.read()", str(stopped_run)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "started\n"
        assert json.loads((stopped_run / DRIVER_FILE).read_text())["pid"] == child.pid
        assert driver_running(Storage(stopped_run)) is True
    finally:
        child.kill()  # SIGKILL: the driver records nothing more
        child.wait()
    assert driver_running(Storage(stopped_run)) is False
    assert sweep_status(str(stopped_run)).counts["interrupted"] == 1


def test_a_tuner_pkl_alone_is_not_a_started_sweep(tmp_path):
    storage = Storage(tmp_path)
    assert not trials_scheduled(storage)
    (tmp_path / "tuner.pkl").write_bytes(b"x")  # Tune wrote it; the sweep stopped before its first state
    assert not trials_scheduled(storage)
    (tmp_path / "experiment_state-2026-12-04_16-00-00.json").write_text("{}")
    assert trials_scheduled(storage)
    os.remove(tmp_path / "tuner.pkl")
    assert not trials_scheduled(storage)


def test_resume_applies_a_changed_tracking_block_and_says_so(tmp_path):
    plain = build_spec(small_spec_dict())
    tracked = build_spec(small_spec_dict(tracking={"mlflow": "http://127.0.0.1:5000",
                                                   "wandb": {"project": "p", "mode": "offline"}}))
    assert changed_tracking(dump_spec(plain), plain) is None
    assert changed_tracking(dump_spec(tracked), tracked) is None
    line = changed_tracking(dump_spec(plain), tracked)
    assert line == ("tracking: applied as the spec now says (MLflow http://127.0.0.1:5000, W&B p (offline); the run "
                    "started with no trackers): trials that report from now on are logged there, earlier epochs "
                    "stay where they were logged")
    assert "started with MLflow http://127.0.0.1:5000" in changed_tracking(dump_spec(tracked), plain)
    older = yaml.safe_load(dump_spec(plain))
    older.pop("tracking", None)  # a spec recorded before the block existed
    assert changed_tracking(yaml.safe_dump(older), plain) is None


class Stop(KeyboardInterrupt):
    """Ctrl-C at a chosen point, raised by the test."""


def stop_once(monkeypatch, module, name, stops):
    """Replace module.name by a function that raises Stop on its first call (before doing anything) and is the
    real one afterwards; `stops` records where it fired."""
    real = getattr(module, name)

    def stopping(*args, **kwargs):
        monkeypatch.setattr(module, name, real)
        stops.append(name)
        raise Stop(name)

    monkeypatch.setattr(module, name, stopping)


def with_callback_once(monkeypatch, callback):
    """The sweep's next tracker check also returns `callback` (a Tune callback in the driver): only that sweep
    runs it, since --resume replaces the callbacks Tune restores with the spec's trackers."""
    from tis_ray import tracking

    real = tracking.check_trackers

    def check(spec):
        monkeypatch.setattr(tracking, "check_trackers", real)
        return [*real(spec), callback]

    monkeypatch.setattr(tracking, "check_trackers", check)


def final_metrics(run_dir):
    from tis_ray.export import export_table

    table = export_table(run_dir)
    assert set(table["status"]) == {"completed"}, table[["trial_id", "status"]]
    metrics = [c for c in table if c.startswith(("mnli", "hans")) and c.endswith("acc")]
    assert len(metrics) >= 3
    return {(row["setting"], row["seed"], row["subset_sha256"]): {m: row[m] for m in metrics}
            for _, row in table.iterrows()}


@pytest.mark.slow
def test_a_sweep_stopped_at_every_point_finishes_with_resume_as_if_never_stopped(tmp_path, monkeypatch):
    """One run directory stopped in turn during validation, during each preparation step, after the preparation
    before the first trial, mid-trial and after the last trial before the export, each time continued with
    --resume: its final results equal those of a sweep run once, and each preparation step ran once."""
    import signal

    import ray
    from conftest import Calls
    from ray import tune

    from tis_ray import export, preparation, status, sweep
    from tis_ray.cli import main

    calls = Calls(monkeypatch)
    raw = small_spec_dict(storage_path=str(tmp_path / "runs"), train={"epochs": 2},
                          data={"synthetic": {"n_train": 600, "n_eval": 100, "hans_per_cell": 10}},
                          clustering={"embedding_epochs": 1}, resources={"cpu": 1, "max_concurrent": 1},
                          grid={"seeds": [1], "data_pct": [0.5],
                                "samplers": [{"type": "random"}, {"type": "kmeans", "n_clusters": 4}]})
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(raw))
    run_dir = tmp_path / "runs" / "t"

    class StopAtSetup(tune.Callback):  # a tracker that cannot start, once the Tuner exists
        def setup(self, **info):
            raise RuntimeError("a tracker that cannot start")

    class CtrlCAfterFirstEpoch(tune.Callback):
        pressed = False

        def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):  # once Tune recorded epoch 1's
            if not self.pressed:  # once: Tune takes a second Ctrl-C as "force quit"
                self.pressed = True
                os.kill(os.getpid(), signal.SIGINT)

    stops = []
    try:
        assert main(["sweep", str(spec), "--num-cpus", "2", "--set", "name=undisturbed"]) == 0
        undisturbed = final_metrics(tmp_path / "runs" / "undisturbed")
        assert (calls.fits, calls.embeds) == (1, 1)

        stop_once(monkeypatch, sweep, "check_local_inputs", stops)  # during validation
        assert main(["sweep", str(spec), "--num-cpus", "2"]) == 130 and not run_dir.exists()
        for name in ("prepare_data", "reference_run", "embed_dataset", "fit_clusters"):  # each preparation step
            stop_once(monkeypatch, preparation, name, stops)
            assert main(["sweep", str(spec), "--num-cpus", "2", "--resume"]) == 130
        assert (calls.fits, calls.embeds) == (2, 2)  # each step was computed once, and kept
        assert sorted(preparation.finished_steps(Storage(run_dir))) == ["embeddings", "reference_model"]

        with_callback_once(monkeypatch, StopAtSetup())  # after the preparation, before the first trial
        with pytest.raises(Exception, match="a tracker that cannot start"):
            main(["sweep", str(spec), "--num-cpus", "2", "--resume"])
        assert (run_dir / "prepared.json").is_file() and not list(run_dir.glob("*/result.json"))
        assert driver_running(Storage(run_dir)) is False

        with_callback_once(monkeypatch, CtrlCAfterFirstEpoch())  # mid-trial
        assert main(["sweep", str(spec), "--num-cpus", "2", "--resume"]) == 130
        assert sweep_status(str(run_dir)).counts.get("done", 0) < 2

        partial = (run_dir / "results.parquet").read_bytes()  # the interrupted sweep's export
        stop_once(monkeypatch, export, "export_table", stops)  # after the last trial, before the export
        assert main(["sweep", str(spec), "--num-cpus", "2", "--resume"]) == 130
        assert (run_dir / "results.parquet").read_bytes() == partial

        assert main(["sweep", str(spec), "--num-cpus", "2", "--resume"]) == 0
    finally:
        ray.shutdown()
    assert stops == ["check_local_inputs", "prepare_data", "reference_run", "embed_dataset", "fit_clusters",
                     "export_table"]
    assert (calls.fits, calls.embeds) == (2, 2)  # nothing of the preparation was computed twice
    assert (run_dir / "results.parquet").is_file()
    resumed = final_metrics(run_dir)
    assert resumed.keys() == undisturbed.keys() and len(resumed) == 2
    for point, metrics in undisturbed.items():
        assert resumed[point] == pytest.approx(metrics, abs=1e-6), point
    for trial_dir in run_dir.glob("*/result.json"):  # every epoch once: no trial trained twice
        epochs = [json.loads(line)["epoch"] for line in trial_dir.read_text().splitlines()]
        assert epochs == [1, 2], trial_dir
    assert status.driver_running(Storage(run_dir)) is False
