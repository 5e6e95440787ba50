"""The Sen2Cor container: how a task runs in it, and how it is built.

* :mod:`s2kit.container.exec` -- the per-task command (``apptainer exec ... s2kit worker``,
  pure, golden-tested), its binds and :func:`check_binds` (every bind source exists before
  anything is launched); re-exported here, so ``s2kit.container.worker_argv`` keeps working.
* :mod:`s2kit.container.build` -- the image: ``apptainer build`` plan, installer pins, lock
  file, labels, def parsing (the old path ``s2kit.image`` still imports it).
"""

from __future__ import annotations

from .exec import TASK_ENV_VARS, binds, check_binds, native_s2kit, shell_line, worker_argv

__all__ = ["TASK_ENV_VARS", "binds", "check_binds", "native_s2kit", "shell_line", "worker_argv"]
