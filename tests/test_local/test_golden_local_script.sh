#!/bin/bash
# s2kit array task for the local scheduler, rendered by `s2kit submit` from
# s2kit/templates/jobs/s2kit-local.sh.tmpl. `s2kit submit` runs it once per
# scene, at most 2 at a time:   bash THIS_FILE INDEX
# INDEX (0-based) processes line 0 + INDEX of batches/all.txt (12 task(s)).
set -u
: # no directories to create
exec /opt/s2kit/bin/s2kit worker --run-dir '/data/run x' --batch all --offset 0 --index "${1:?usage: bash $0 ARRAY_INDEX}"
