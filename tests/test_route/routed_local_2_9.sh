#!/bin/bash
# s2kit array task for the local scheduler, rendered by `s2kit submit` from
# s2kit/templates/jobs/s2kit-local.sh.tmpl. `s2kit submit` runs it once per
# scene, at most 5 at a time:   bash THIS_FILE INDEX
# INDEX (0-based) processes line 0 + INDEX of batches/all.txt (3 task(s)).
set -u
mkdir -p -- /data/x/scratch /data/x/l2a
exec apptainer exec --cleanenv --no-home --env SLURM_ARRAY_TASK_ID="${SLURM_ARRAY_TASK_ID:-}" --env SLURM_ARRAY_JOB_ID="${SLURM_ARRAY_JOB_ID:-}" --env SLURM_JOB_ID="${SLURM_JOB_ID:-}" --env SLURM_CPUS_PER_TASK="${SLURM_CPUS_PER_TASK:-}" --env LSB_JOBINDEX="${LSB_JOBINDEX:-}" --env LSB_JOBID="${LSB_JOBID:-}" --env LSB_DJOB_NUMPROC="${LSB_DJOB_NUMPROC:-}" --bind /data/x/l1c:/data/x/l1c:ro --bind /data/x/dem:/data/x/dem:ro --bind /data/img/sen2cor-2.9.sif:/data/img/sen2cor-2.9.sif:ro --bind /data/x/scratch:/data/x/scratch:rw --bind /data/x/l2a:/data/x/l2a:rw --bind /data/x/run:/data/x/run:rw /data/img/sen2cor-2.9.sif s2kit worker --run-dir /data/x/run --batch all --offset 0 --index "${1:?usage: bash $0 ARRAY_INDEX}"
