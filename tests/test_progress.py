"""Progress lines of the long steps and the log format: what a user watching a sweep reads."""

import logging
import re

from tis_ray.progress import Progress


def test_plain_progress_lines_carry_count_rate_and_eta(caplog, monkeypatch):
    now = [0.0]
    monkeypatch.setattr("tis_ray.progress.time.monotonic", lambda: now[0])
    with caplog.at_level(logging.INFO, logger="tis_ray.progress"):
        progress = Progress("embedding", 100, unit="pair", interval=30, interactive=False)
        for t, n in ((10.0, 25), (20.0, 25), (40.0, 25)):  # a line once 30 s have passed since the last one
            now[0] = t
            progress.update(n, loss=0.5)
        now[0] = 50.0
        progress.update(25)
        progress.close()
    lines = [r.getMessage() for r in caplog.records]
    # 75 pairs in 40 s: 1.88 pairs/s, 25 left: 13 s; then the closing line at 100 pairs in 50 s
    assert re.fullmatch(r"embedding:  75% 75/100 pair \[00:40 elapsed, 00:13 left, +1\.88pair/s\] loss=0\.5", lines[0])
    assert re.fullmatch(r"embedding: 100% 100/100 pair \[00:50 elapsed, 00:00 left, +2\.00pair/s\] loss=0\.5", lines[1])
    assert len(lines) == 2


def test_log_lines_have_the_time_and_the_trial(capsys):
    from tis_ray import logs

    logs.setup("s42-pct0.1-kmeans_k=8")
    logging.getLogger("tis_ray.trial").info("epoch 2: {'mnli_m/acc': 0.7}")
    logging.getLogger("transformers.trainer").info("third-party chatter")  # below WARNING: not shown
    logs.setup()
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[tis-ray s42-pct0\.1-kmeans_k=8\] epoch 2: .*", err[0])
