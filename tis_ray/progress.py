"""Progress of the long steps (the reference fine-tune, embedding, tokenization): a tqdm bar on an interactive
terminal; elsewhere (CI, `ray job logs`, a worker's forwarded output) a timed log line at most every 30 s with
the same count, rate and ETA, formatted by tqdm."""

from __future__ import annotations

import logging
import sys
import time

from tqdm import tqdm

log = logging.getLogger(__name__)

INTERVAL_S = 30.0  # at most this long between two plain progress lines
PLAIN = "{desc}: {percentage:3.0f}% {n_fmt}/{total_fmt} {unit} [{elapsed} elapsed, {remaining} left, {rate_fmt}]"


class Progress:
    """Counts `total` units of one step and shows how far it is: `update(n, **fields)`, then `close()`."""

    def __init__(self, desc: str, total: int, unit: str = "it", interval: float = INTERVAL_S,
                 interactive: bool | None = None):
        self.desc, self.total, self.unit, self.interval = desc, total, unit, interval
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self.bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr) if self.interactive else None
        self.n, self.start, self.last_line, self.fields = 0, time.monotonic(), time.monotonic(), {}

    def line(self) -> str:
        """Return the step's progress as text: 'desc:  45% 45/100 step [00:10 elapsed, 00:12 left, 4.50step/s] loss=0.61'."""
        meter = tqdm.format_meter(self.n, self.total, time.monotonic() - self.start, prefix=self.desc,
                                  unit=self.unit, bar_format=PLAIN)
        extra = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.fields.items())
        return f"{meter} {extra}".rstrip()

    def due(self) -> bool:
        """True when the next update shows a line (always on a terminal's bar: fields are cheap to show there)."""
        return self.bar is not None or time.monotonic() - self.last_line >= self.interval

    def update(self, n: int = 1, **fields) -> None:
        """Count `n` more units; `fields` (a loss, say) are shown beside the count."""
        self.n += n
        self.fields.update(fields)
        if self.bar is not None:
            self.bar.update(n)
            if fields:
                self.bar.set_postfix(fields, refresh=False)
        elif time.monotonic() - self.last_line >= self.interval:
            self.last_line = time.monotonic()
            log.info("%s", self.line())

    def close(self) -> None:
        """End the step: close the bar, or log the final line."""
        if self.bar is not None:
            self.bar.close()
        else:
            log.info("%s", self.line())

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
