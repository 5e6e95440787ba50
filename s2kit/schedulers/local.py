"""The local scheduler: run the array on this machine, at most ``max_concurrent`` at a time.

``s2kit submit`` with ``kind = "local"`` renders the same kind of script as the
cluster backends (``bash SCRIPT INDEX`` runs one task), runs every task as a
subprocess and returns when all have finished, printing one line per task.
Each task writes its output to ``jobs/<batch>/<job>_<index>.log``. When the
run ends, the exit status of every task is written next to the script
(``<job>.results.json``) so ``s2kit status`` can tell which tasks ran; while it
runs, the submitting process's pid (host:pid in the job id) says it is alive.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from ..exitcodes import ExitCode
from ..fsutil import atomic_write_text
from ..process import pid_alive
from ..runs import JobRecord
from .base import (
    TEMPLATE_NAMES,
    JobSpec,
    JobStatus,
    Scheduler,
    TaskState,
    check_script_values,
    load_template,
    prepare_line,
    render_template,
)
from .env import shell_line

__all__ = ["LocalScheduler", "render_local", "pid_alive", "EXIT_DONE", "EXIT_FAILED", "EXIT_LOCKED"]

EXIT_DONE, EXIT_FAILED, EXIT_LOCKED = ExitCode.DONE, ExitCode.FAILED, ExitCode.LOCKED
_OUTCOME: dict[int, str] = {EXIT_DONE: "done", EXIT_LOCKED: "locked by another worker"}


def render_local(spec: JobSpec, template: str | None = None) -> str:
    """PURE: job spec -> the local task script (``bash SCRIPT INDEX``); see check_script_values."""
    check_script_values(spec)
    return render_template(
        template if template is not None else load_template(TEMPLATE_NAMES["local"]),
        {
            "batch": spec.batch,
            "offset": str(spec.offset),
            "count": str(spec.count),
            "max_concurrent": str(spec.max_concurrent),
            "prepare": prepare_line(spec),
            "command": shell_line(spec.command),
        },
    )


def this_host() -> str:
    return os.uname().nodename


def _outcome(rc: int) -> TaskState:
    return "done" if rc == EXIT_DONE else ("gone" if rc == EXIT_LOCKED else "failed")


class LocalScheduler(Scheduler):
    kind = "local"
    script_suffix = ".sh"
    index_base = 0

    def max_array_size(self) -> int:
        return 1 << 31

    def node_memory_mb(self, queue: str = "") -> int | None:
        """MemTotal of this machine."""
        try:
            with open("/proc/meminfo", encoding="ascii") as fh:
                for line in fh:
                    if line.startswith("MemTotal:"):
                        return int(line.split()[1]) // 1024
        except OSError:
            return None
        return None

    def render(self, spec: JobSpec) -> str:
        return render_local(spec)

    def submit_argv(self, script: Path, spec: JobSpec) -> list[str]:
        return ["bash", str(script), "INDEX"]

    @staticmethod
    def new_job_id() -> str:
        return f"{this_host()}:{os.getpid()}:{time.time_ns() // 1_000_000}"

    @staticmethod
    def results_file(script: Path, job_id: str) -> Path:
        return script.with_name(f"{_safe(job_id)}.results.json")

    @staticmethod
    def log_file(spec: JobSpec, job_id: str, index: int) -> Path:
        return spec.log_dir / f"{_safe(job_id)}_{index}.log"

    def submit(self, script: Path, spec: JobSpec) -> str:
        job_id = self.new_job_id()
        self.run_array(script, spec, job_id)
        return job_id

    def chunk_note(self, tasks: int, arrays: int, limit: int, max_concurrent: int) -> str | None:
        return None  # no array limit worth a note here

    def start(
        self,
        script: Path,
        spec: JobSpec,
        record: Callable[[str], None],
        labels: Sequence[str] | None = None,
        echo: Callable[[str], None] | None = None,
    ) -> tuple[str, dict[int, int]]:
        """Run the tasks here and now (recorded first, so ``status`` sees them running)."""
        say = echo or (lambda _msg: None)
        job_id = self.new_job_id()
        record(job_id)
        say(f"local: running {spec.count} task(s), at most {spec.max_concurrent} at a time")
        return job_id, self.run_array(script, spec, job_id, labels, say)

    def run_array(
        self,
        script: Path,
        spec: JobSpec,
        job_id: str,
        labels: Sequence[str] | None = None,
        echo: Callable[[str], None] | None = None,
    ) -> dict[int, int]:
        """Run tasks 0..count-1, at most max_concurrent at once; return index -> exit status."""
        say = echo or (lambda _msg: None)
        procs: dict[int, subprocess.Popen[bytes]] = {}
        lock = threading.Lock()
        stop = threading.Event()
        results: dict[int, int] = {}

        def one(i: int) -> int:
            if stop.is_set():
                return -signal.SIGTERM
            with open(self.log_file(spec, job_id, i), "ab") as log:
                p = subprocess.Popen(["bash", str(script), str(i)], stdout=log, stderr=subprocess.STDOUT)
                with lock:
                    procs[i] = p
                rc = p.wait()
                with lock:
                    procs.pop(i, None)
            return rc

        workers = max(1, min(spec.max_concurrent, spec.count))
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="s2kit-local")
        futures: dict[Future[int], int] = {pool.submit(one, i): i for i in range(spec.count)}
        pending = set(futures)
        try:
            while pending:
                finished, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
                for fut in finished:
                    i = futures[fut]
                    rc = fut.result()
                    results[i] = rc
                    what = _OUTCOME.get(rc, f"failed (exit {rc})")
                    label = labels[i] if labels is not None and i < len(labels) else f"index {i}"
                    say(f"local: [{len(results)}/{spec.count}] {label}: {what}")
        except BaseException:
            stop.set()
            with lock:
                for p in procs.values():
                    p.terminate()
            raise
        finally:
            pool.shutdown(wait=True)
            atomic_write_text(
                self.results_file(script, job_id),
                json.dumps({"job_id": job_id, "exit_codes": {str(k): v for k, v in sorted(results.items())}})
                + "\n",
            )
        return results

    def query(self, records: Sequence[JobRecord]) -> dict[str, JobStatus]:
        out: dict[str, JobStatus] = {}
        for rec in records:
            results = self.results_file(Path(rec.script), rec.job_id)
            try:
                doc = json.loads(results.read_text(encoding="utf-8"))
                tasks = {int(k): _outcome(int(v)) for k, v in doc.get("exit_codes", {}).items()}
                out[rec.job_id] = JobStatus(rec.job_id, "ended", tasks, default="gone")
                continue
            except (OSError, ValueError, AttributeError):
                pass
            host, _, rest = rec.job_id.partition(":")
            pid = int(rest.split(":", 1)[0]) if rest.split(":", 1)[0].isdigit() else -1
            if host != this_host():
                out[rec.job_id] = JobStatus(rec.job_id, "unknown", default="unknown", detail=f"ran on {host}")
            elif pid_alive(pid):
                # the submitting process is still running the array: per-task states come from state files
                out[rec.job_id] = JobStatus(rec.job_id, "active", default="unknown")
            else:
                out[rec.job_id] = JobStatus(rec.job_id, "ended", default="gone", detail="submitter gone")
        return out

    def cancel(self, job_id: str) -> None:
        host, _, rest = job_id.partition(":")
        pid = rest.split(":", 1)[0]
        if host == this_host() and pid.isdigit() and pid_alive(int(pid)):
            os.kill(int(pid), signal.SIGINT)


def _safe(job_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", job_id)
