#!/usr/bin/env bash
# install.sh - install and start the REAL infrastructure of the infra tests (issue 15): what
# .ci/run and `make test-infra` do, and nothing else ever does (`make test` installs nothing).
#
#   Debian packages  gdal-bin python3-gdal (DEM merge checks), chromium (the HTML report, headless),
#                    makeself (the stand-in Sen2Cor installer), shellcheck (the def's shell sections)
#   Apptainer        tests/infra/apptainer-sandbox.sh setup (debootstraps ~400 MB, ~1 min, idempotent)
#   Slurm            tests/infra/slurm-single-node.sh up (single node, state in /tmp/s2-slurm)
#
# Usage (as root):  eval "$(bash tests/infra/install.sh)"
#   stdout is ONLY the line `export SLURM_CONF=...`; progress goes to stderr.
#   Stop Slurm afterwards: bash tests/infra/slurm-single-node.sh down
set -euo pipefail
cd "$(dirname "$0")/../.."
PROG="install.sh"
log() { echo "$PROG: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
  echo "$PROG: error: expected root, found uid $(id -u): it apt-installs packages, debootstraps the" \
       "Apptainer sandbox and starts Slurm; run: sudo make test-infra" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive

need=()
for p in gdal-bin python3-gdal chromium makeself shellcheck; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  log "apt-get install ${need[*]}"
  apt-get install -y --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${need[@]}" >/dev/null; }
fi

log "Apptainer sandbox (tests/infra/apptainer-sandbox.sh setup)"
bash tests/infra/apptainer-sandbox.sh setup >&2

log "Slurm (tests/infra/slurm-single-node.sh up)"
bash tests/infra/slurm-single-node.sh up
