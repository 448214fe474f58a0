"""Chaos on S3: a sweep whose run directory is on moto behind a fault-injecting proxy, during which, at seeded
random points, a trial worker is killed, the driver is killed with SIGKILL, and S3 requests fail transiently.
Resumed to the end, every trial's metrics equal those of the same trial run undisturbed, no trial that had
finished is trained again, nothing is lost. Only processes this test started are signalled, by PID (the
driver's Ray processes by the PIDs collected from its process tree while it ran)."""

import json
import os
import random
import subprocess
import sys
import time

import pytest
import yaml
from conftest import small_spec_dict
from process_tree import ProcessTree
from s3_faults import FaultyS3Proxy

from tis_ray.export import export_table
from tis_ray.preparation import trial_inputs
from tis_ray.spec import GridPoint, build_spec
from tis_ray.storage import Storage, join
from tis_ray.trial import run_trial

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("TIS_RAY_CHAOS_SEED", "2026"))  # another seed, other fault points
TRANSIENT = 0.03  # share of S3 requests answered "503 SlowDown" (the clients retry them)


def start_sweep(tmp_path, raw, log_name, *extra):
    """Start `tis-ray sweep` as a user would, its output into a file (a pipe nobody reads while the test waits
    would fill up and stop the driver)."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(raw))
    log = open(tmp_path / log_name, "w")  # noqa: SIM115 - the child writes it; closed with the test's tmp_path
    return subprocess.Popen([sys.executable, "-m", "tis_ray.cli", "sweep", str(spec), "--num-cpus", "2", *extra],
                            stdout=log, stderr=subprocess.STDOUT, text=True)


def wait_for(condition, driver, log, what, timeout=180):
    """Return condition()'s first true value, polled; fail with the driver's last lines when it exits first or
    the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if driver.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"no {what} (driver exit status {driver.poll()}):\n{log.read_text()[-4000:]}")


def trial_folders(storage):
    return [t for t in storage.folders() if storage.exists(f"{t}/params.json")] if storage.exists() else []


def finished(storage):
    """Return {trial: its metrics.json text} of the trials that have finished (metrics.json is uploaded last)."""
    return {t: storage.read_text(f"{t}/metrics.json") for t in trial_folders(storage)
            if storage.exists(f"{t}/metrics.json")}


def checkpoints(storage, seen):
    """Add the epoch checkpoints in the run directory now to `seen` (a finished trial deletes its own); returns
    how many were ever seen."""
    seen.update((t, c) for t in trial_folders(storage) for c in storage.folders(t) if c.startswith("checkpoint_"))
    return len(seen)


def undisturbed(storage, trial, tmp_path):
    """The final metrics of the same trial run start to end in this process, with no fault."""
    params = storage.read_json(f"{trial}/params.json")
    spec, point = build_spec(params["spec"]), GridPoint.model_validate(params["point"])
    inputs = trial_inputs(storage.read_json("prepared.json"), spec, point, storage.location)
    return run_trial({**params, "prepared": inputs}, tmp_path / f"again_{trial}")


def test_a_sweep_survives_killed_workers_a_killed_driver_and_failing_s3(s3, tmp_path):
    rng = random.Random(SEED)
    checkpoints_before_worker_kill = rng.randint(1, 3)
    finished_before_driver_kill = rng.randint(1, 2)
    moto = s3.split("endpoint_override=")[1].split("&")[0]
    direct = Storage(join(s3, "chaos"))  # the test's own reads go around the proxy
    survived = {"trial worker killed": 0, "driver killed (SIGKILL)": 0}
    with FaultyS3Proxy(moto) as proxy:
        proxy.transient(TRANSIENT, SEED)
        raw = small_spec_dict(name="chaos", storage_path=s3.replace(moto, f"127.0.0.1:{proxy.port}"),
                              train={"epochs": 3},
                              data={"synthetic": {"n_train": 800, "n_eval": 100, "hans_per_cell": 10}},
                              resources={"cpu": 1, "max_concurrent": 1, "max_failures": 2},
                              grid={"seeds": [1, 2, 3, 4], "data_pct": [0.5], "samplers": [{"type": "random"}]})
        driver, log = start_sweep(tmp_path, raw, "driver.log"), tmp_path / "driver.log"
        family = ProcessTree(driver.pid)
        seen = set()
        try:
            wait_for(lambda: checkpoints(direct, seen) >= checkpoints_before_worker_kill, driver, log,
                     f"{checkpoints_before_worker_kill} epoch checkpoints")
            workers = wait_for(lambda: family.alive("ImplicitFunc"), driver, log, "a trial worker")
            for worker in workers:  # the trial's worker process, mid-trial
                worker.kill()
                survived["trial worker killed"] += 1
            wait_for(lambda: len(finished(direct)) >= finished_before_driver_kill, driver, log,
                     f"{finished_before_driver_kill} finished trials")
            driver.kill()  # SIGKILL: the driver records nothing more
            driver.wait()
            survived["driver killed (SIGKILL)"] += 1
        finally:
            if driver.poll() is None:
                driver.kill()
            family.end()  # the killed driver's Ray processes, by the PIDs seen in its tree
        before = finished(direct)
        assert 1 <= len(before) < 4

        resumed = start_sweep(tmp_path, raw, "resumed.log", "--resume")
        resumed_family = ProcessTree(resumed.pid)
        try:
            code = resumed.wait(timeout=300)
        finally:
            if resumed.poll() is None:
                resumed.kill()
            resumed_family.end()
        resumed_log = (tmp_path / "resumed.log").read_text()
        assert code == 0, resumed_log[-4000:]
        assert "Trials did not complete" not in resumed_log, resumed_log[-4000:]  # Tune restored every trial
        faults = dict(survived, **{"S3 request failed": proxy.faults["transient"]})
    print(f"chaos (seed {SEED}): survived " + ", ".join(f"{n} x {what}" for what, n in faults.items())
          + f"; {resumed_log.count('it is not trained again')} finished trial(s) restored by Tune were reported "
          "again, not trained")
    assert faults["trial worker killed"] >= 1 and faults["S3 request failed"] >= 1

    table = export_table(direct.location)
    assert len(table) == 4 and set(table["status"]) == {"completed"} and sorted(table["seed"]) == [1, 2, 3, 4]
    after = finished(direct)
    for trial, text in before.items():  # finished before the driver died: not trained again
        assert after[trial] == text, trial
    for trial in trial_folders(direct):  # every trial's metrics equal those of the same trial run undisturbed
        again = undisturbed(direct, trial, tmp_path)
        final = json.loads(after[trial])["final"]
        metrics = [k for k in again if k.startswith(("mnli", "hans"))]
        assert len(metrics) > 10
        assert {k: final[k] for k in metrics} == pytest.approx({k: again[k] for k in metrics}, abs=1e-6), trial
        assert final["subset_sha256"] == again["subset_sha256"]
        assert final["epoch"] == 3
