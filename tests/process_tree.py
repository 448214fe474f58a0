"""The descendants of a process this test started, remembered while it runs, so that they can be ended by PID
after it is gone (a killed driver's or head's Ray processes outlive it)."""

import threading
import time

import psutil


class ProcessTree:
    """Remembers every descendant of a process while it runs (PID and start time, so a reused PID is spared)."""

    def __init__(self, pid: int):
        self.root, self.seen, self._stop = psutil.Process(pid), {}, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self):
        while not self._stop.is_set():
            try:
                for child in self.root.children(recursive=True):
                    try:
                        self.seen.setdefault(child.pid, child.create_time())
                    except psutil.Error:
                        continue
            except psutil.NoSuchProcess:
                return
            time.sleep(0.2)

    def _living(self) -> list[psutil.Process]:
        """Return the descendants seen that still run (the same process: its start time is unchanged)."""
        found = []
        for pid, started in list(self.seen.items()):
            try:
                proc = psutil.Process(pid)
                if proc.create_time() == started:
                    found.append(proc)
            except psutil.Error:
                continue
        return found

    def alive(self, marker: str) -> list[psutil.Process]:
        """Return the living descendants whose command line holds `marker`."""
        found = []
        for proc in self._living():
            try:
                if marker in " ".join(proc.cmdline()):
                    found.append(proc)
            except psutil.Error:
                continue
        return found

    def end(self) -> None:
        """Stop watching and kill every descendant seen that still runs; returns once they are gone."""
        self._stop.set()
        self._thread.join()
        leftovers = []
        for proc in self._living():
            try:
                proc.kill()
                leftovers.append(proc)
            except psutil.Error:
                continue
        psutil.wait_procs(leftovers, timeout=30)
