#!/usr/bin/env bash
# install-sen2cor.sh - install ESA Sen2Cor the way s2kit runs it: verified installer, ESACCI-LC
# aux data, s2kit's default GIPPs. ONE script for the Apptainer image (%post of containers/sen2cor.def)
# and for native installs on a login node.
#
# Usage:
#   install-sen2cor.sh [--version 2.9|2.10|2.11|2.12] [--prefix DIR | --target DIR]
#                      [--installer URL|FILE] [--sha256 HEX] [--checksums FILE]
#                      [--esacci URL|FILE] [--require-esacci] [--gipp-dir DIR] [--s2kit EXE]
#                      [--link PATH] [--labels FILE] [--ca-bundle FILE]
#                      [--apt] [--install-s2kit SRC --venv DIR]       (image builds)
#   install-sen2cor.sh --rewrite-home DIR [--install-home PATH]  (only step 3b, on an existing install)
#
# Steps, each one failing loudly:
#   1. installer: the official Sen2Cor-02.09.00-Linux64.run (default URL on step.esa.int) or a local
#      copy; its sha256 must equal --sha256, else the row of checksums.tsv for that file name. With
#      neither, it is installed on TRUST ON FIRST USE and a warning says so (the sha256 is recorded).
#      An installer named for another release than --version (Sen2Cor-02.09.00-... with 2.12) is refused.
#   2. makeself's own integrity check (`INSTALLER --check`), always.
#   3. `bash INSTALLER --nox11 --target TARGET` at its final path (the installer needs `file`); its
#      writes to $HOME go to a throw-away folder.
#   3b. SEN2COR_HOME: the installer hard-codes the installing user's $HOME/sen2cor/<version> in
#      L2A_Bashrc, which bin/L2A_Process sources: every line of L2A_Bashrc and the bin/ launchers that
#      sets SEN2COR_HOME becomes `export SEN2COR_HOME="${SEN2COR_HOME:-<its value>}"` (a value
#      already in the environment wins: s2kit's per-task home), and the install-time $HOME in
#      those files becomes `$HOME`. Fails when no such line is found, or when sourcing L2A_Bashrc
#      still overrides a SEN2COR_HOME from the environment. Recorded (label
#      org.s2kit.sen2cor.home-rewrite, sen2cor_home_rewrite= in .s2kit-install).
#      --rewrite-home DIR does only this, on an install made earlier (--install-home: the $HOME of
#      whoever ran the installer; default $HOME).
#   4. ESACCI-LC: `s2kit aux esacci --source SRC --dest TARGET/.../sen2cor/aux_data`.
#   5. GIPPs: `s2kit gipp render --out GIPP_DIR --sen2cor VERSION --threads 1` + `s2kit gipp check`.
#   6. Record: TARGET/.s2kit-install (key=value) and, with --labels, Apptainer labels (name value).
# --apt (image builds only) apt-installs python3, python3-venv, file, curl, ca-certificates;
# --install-s2kit SRC --venv DIR pip-installs s2kit (a source folder or a wheel) into a new venv.
# --ca-bundle FILE: a PEM bundle to trust for this run's downloads (apt https mirrors, pip, curl,
# s2kit) behind a TLS-intercepting proxy; only exported to the children, never written anywhere.
#
# Sentinel values (what the def's %arguments default to): --installer default, --sha256 none,
# --esacci none mean "not given".
set -euo pipefail

PROG=install-sen2cor.sh
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

die() { echo "$PROG: error: $*" >&2; exit 1; }
log() { echo "$PROG: [+${SECONDS}s] $*" >&2; }
warn() {
  echo "$PROG: WARNING: ********************************************************************" >&2
  local line
  for line in "$@"; do echo "$PROG: WARNING: $line" >&2; done
  echo "$PROG: WARNING: ********************************************************************" >&2
}

VERSION=2.9
PREFIX=/opt
TARGET=""
INSTALLER=default
SHA256=none
SHA256_ORIGIN=argument
CHECKSUMS="$HERE/checksums.tsv"
ESACCI=none
REQUIRE_ESACCI=0
GIPP_DIR=""
S2KIT=""
LINK=""
LABELS=""
APT=0
S2KIT_SRC=""
VENV=""
CA_BUNDLE=none
REWRITE_ONLY=""
INSTALL_HOME="${HOME:-}"

while [[ $# -gt 0 ]]; do
  case "$1" in
    --version) VERSION="${2:?--version needs a value}"; shift 2 ;;
    --prefix) PREFIX="${2:?--prefix needs a value}"; shift 2 ;;
    --target) TARGET="${2:?--target needs a value}"; shift 2 ;;
    --installer) INSTALLER="${2:?--installer needs a value}"; shift 2 ;;
    --sha256) SHA256="${2:?--sha256 needs a value}"; shift 2 ;;
    --sha256-origin) SHA256_ORIGIN="${2:?--sha256-origin needs a value}"; shift 2 ;;
    --checksums) CHECKSUMS="${2:?--checksums needs a value}"; shift 2 ;;
    --esacci) ESACCI="${2:?--esacci needs a value}"; shift 2 ;;
    --require-esacci) REQUIRE_ESACCI=1; shift ;;
    --gipp-dir) GIPP_DIR="${2:?--gipp-dir needs a value}"; shift 2 ;;
    --s2kit) S2KIT="${2:?--s2kit needs a value}"; shift 2 ;;
    --link) LINK="${2:?--link needs a value}"; shift 2 ;;
    --labels) LABELS="${2:?--labels needs a value}"; shift 2 ;;
    --apt) APT=1; shift ;;
    --install-s2kit) S2KIT_SRC="${2:?--install-s2kit needs a value}"; shift 2 ;;
    --venv) VENV="${2:?--venv needs a value}"; shift 2 ;;
    --ca-bundle) CA_BUNDLE="${2:?--ca-bundle needs a value}"; shift 2 ;;
    --rewrite-home) REWRITE_ONLY="${2:?--rewrite-home needs a value}"; shift 2 ;;
    --install-home) INSTALL_HOME="${2:?--install-home needs a value}"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

# a newline would add a line to .s2kit-install / the labels, and it is refused before anything runs
plain() {  # $1 = option, $2 = its value
  if [[ $2 == *[[:cntrl:]]* ]]; then die "$1: expected no control characters, found $(printf '%q' "$2")"; fi
}
plain --version "$VERSION"; plain --prefix "$PREFIX"; plain --target "$TARGET"; plain --installer "$INSTALLER"
plain --sha256 "$SHA256"; plain --checksums "$CHECKSUMS"; plain --esacci "$ESACCI"; plain --gipp-dir "$GIPP_DIR"
plain --s2kit "$S2KIT"; plain --link "$LINK"; plain --labels "$LABELS"; plain --install-s2kit "$S2KIT_SRC"
plain --venv "$VENV"; plain --ca-bundle "$CA_BUNDLE"; plain --rewrite-home "$REWRITE_ONLY"
plain --sha256-origin "$SHA256_ORIGIN"
if [[ -n $REWRITE_ONLY ]]; then plain --install-home "$INSTALL_HOME"; fi

# ---------------------------------------------------------------------------- version -> installer
case "$VERSION" in
  2.9|2.09|02.09.00) VERSION=2.9; LONG=02.09.00; DIRVER=2.9.0 ;;
  2.10|02.10.01) VERSION=2.10; LONG=02.10.01; DIRVER=2.10.0 ;;
  2.11|02.11.00) VERSION=2.11; LONG=02.11.00; DIRVER=2.11.0 ;;
  2.12|02.12.03) VERSION=2.12; LONG=02.12.03; DIRVER=2.12.0 ;;
  *) die "expected --version 2.9, 2.10, 2.11 or 2.12, found '$VERSION'" ;;
esac
NAME="Sen2Cor-$LONG-Linux64"
OFFICIAL_URL="https://step.esa.int/thirdparties/sen2cor/$DIRVER/$NAME.run"
[[ $INSTALLER == default || -z $INSTALLER ]] && INSTALLER="$OFFICIAL_URL"
[[ -n $TARGET ]] || TARGET="$PREFIX/$NAME"
[[ $TARGET == /* ]] || die "expected an absolute install path, found '$TARGET' (the installer bakes it in)"
[[ -n $GIPP_DIR ]] || GIPP_DIR="$TARGET/s2kit-gipp"
[[ $SHA256 == none ]] && SHA256=""
[[ $ESACCI == none ]] && ESACCI=""
SHA256="$(printf '%s' "$SHA256" | tr 'A-F' 'a-f')"
if [[ -n $SHA256 && ! $SHA256 =~ ^[0-9a-f]{64}$ ]]; then
  die "expected --sha256 to be 64 hex digits, found '$SHA256'"
fi
if [[ $REQUIRE_ESACCI == 1 && -z $ESACCI ]]; then
  die "expected the ESACCI-LC archive (ESACCI-LC-L4-ALL-FOR-SEN2COR.zip, a file or an http(s) URL; image builds: --build-arg ESACCI_SOURCE=...), found none"
fi
if [[ -n $S2KIT_SRC && -z $VENV ]]; then die "--install-s2kit needs --venv DIR"; fi

is_url() { [[ $1 == http://* || $1 == https://* ]]; }

APT_OPTS=()
if [[ $CA_BUNDLE != none && -n $CA_BUNDLE ]]; then
  [[ -f $CA_BUNDLE ]] || die "expected the CA bundle (--ca-bundle) at '$CA_BUNDLE', found no file"
  export PIP_CERT="$CA_BUNDLE" CURL_CA_BUNDLE="$CA_BUNDLE" SSL_CERT_FILE="$CA_BUNDLE" REQUESTS_CA_BUNDLE="$CA_BUNDLE"
  APT_OPTS=(-o "Acquire::https::CAInfo=$CA_BUNDLE")
  log "trusting the CA bundle $CA_BUNDLE for this run's downloads (not installed)"
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/install-sen2cor.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# ---------------------------------------------------------------------------- steps
apt_packages() {
  log "apt: installing python3 python3-venv file curl ca-certificates"
  mkdir -p /etc/apt/apt.conf.d
  # snapshot mirrors serve Release files whose Valid-Until has passed; harmless elsewhere
  printf '%s\n' 'Acquire::Check-Valid-Until "false";' 'Acquire::Check-Date "false";' \
    > /etc/apt/apt.conf.d/99s2kit-snapshot
  export DEBIAN_FRONTEND=noninteractive
  apt-get "${APT_OPTS[@]}" update -qq || die "apt-get update failed: the build has no network or the mirror (MirrorURL) is unreachable"
  apt-get "${APT_OPTS[@]}" install -y -qq --no-install-recommends python3 python3-venv file curl ca-certificates >/dev/null \
    || die "apt-get install failed (no network, or a mirror without these packages)"
  apt-get clean
  rm -rf /var/lib/apt/lists/*
}

install_s2kit() {
  log "s2kit: pip install $S2KIT_SRC into $VENV"
  python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  "$VENV/bin/python" -m pip install --no-cache-dir --disable-pip-version-check -q "$S2KIT_SRC" \
    || die "pip install of s2kit failed (PyPI unreachable? the build needs it for s2kit's dependencies)"
  "$VENV/bin/python" -m pip freeze --all > "$VENV/pip-freeze.txt"
  S2KIT="$VENV/bin/s2kit"
}

fetch_installer() {
  if is_url "$INSTALLER"; then
    local out="$WORK/${INSTALLER##*/}"
    log "downloading $INSTALLER"
    if command -v curl >/dev/null; then
      curl -fsSL --retry 3 --connect-timeout 30 -o "$out" "$INSTALLER" || DL_FAILED=1
    elif command -v wget >/dev/null; then
      wget -q -O "$out" "$INSTALLER" || DL_FAILED=1
    else
      die "expected curl or wget to download $INSTALLER, found neither"
    fi
    if [[ ${DL_FAILED:-0} == 1 ]]; then
      die "could not download $INSTALLER (no network, or ESA's server is down); download it where you can and pass the file (--installer FILE / --build-arg SEN2COR_INSTALLER=/abs/path)"
    fi
    INSTALLER_FILE="$out"
  else
    [[ -f $INSTALLER ]] || die "expected the Sen2Cor installer at '$INSTALLER', found no file"
    INSTALLER_FILE="$INSTALLER"
  fi
}

check_installer_release() {  # an installer named for another Sen2Cor release is never recorded as $VERSION
  local base="${INSTALLER_FILE##*/}" release
  [[ $base =~ ^Sen2Cor-([0-9]{1,3})\.([0-9]{1,3})\.[0-9]{1,3}- ]] || return 0  # a name without a release
  release="$((10#${BASH_REMATCH[1]})).$((10#${BASH_REMATCH[2]}))"
  if [[ $release != "$VERSION" ]]; then
    die "expected the installer of Sen2Cor $VERSION ($NAME.run), found $base (Sen2Cor $release); pass --version $release, or the $VERSION installer"
  fi
}

table_sha256() {  # sha256 pinned for installer file name $1 in $CHECKSUMS (empty if none)
  [[ -f $CHECKSUMS ]] || return 0
  awk -F'\t' -v name="$1" '$0 !~ /^[ \t]*#/ && $2 == name { print tolower($3); exit }' "$CHECKSUMS"
}

verify_installer() {
  local base actual pinned
  base="${INSTALLER_FILE##*/}"
  actual="$(sha256sum "$INSTALLER_FILE" | cut -d' ' -f1)"
  pinned="$(table_sha256 "$base")"
  if [[ -n $SHA256 && -n $pinned && $SHA256 != "$pinned" ]]; then
    die "installer $base: --sha256 $SHA256 contradicts the pin $pinned in $(basename "$CHECKSUMS"); fix one of them"
  fi
  if [[ -z $SHA256 && -n $pinned ]]; then SHA256="$pinned"; SHA256_ORIGIN=table; fi
  if [[ -n $SHA256 ]]; then
    if [[ $actual != "$SHA256" ]]; then
      die "installer sha256 mismatch for $base: expected $SHA256 ($SHA256_ORIGIN), found $actual; refusing to install it"
    fi
    log "installer sha256 ok: $actual ($SHA256_ORIGIN)"
    PINNED="$SHA256_ORIGIN"
  else
    warn "NO PINNED SHA256 for $base: nothing to check it against (no --sha256, no row in $(basename "$CHECKSUMS"))." \
         "Installing on TRUST ON FIRST USE. Installed sha256: $actual" \
         "Pin it: 'make container' records it in containers/sen2cor.lock, or pass --sha256 $actual"
    PINNED="none (trust on first use)"
  fi
  INSTALLED_SHA256="$actual"
  log "makeself integrity check: bash $base --check"
  if ! bash "$INSTALLER_FILE" --check > "$WORK/check.log" 2>&1; then
    cat "$WORK/check.log" >&2
    die "the installer's own integrity check (--check) failed for $base: a corrupt or truncated download"
  fi
}

run_installer() {
  command -v file >/dev/null || die "the Sen2Cor installer needs the 'file' command, found none (Debian: apt-get install file)"
  if [[ -e $TARGET && -n "$(ls -A "$TARGET" 2>/dev/null)" ]]; then
    die "expected a new install path, found a non-empty $TARGET (remove it, or pass another --prefix/--target)"
  fi
  log "installing ${INSTALLER_FILE##*/} into $TARGET"
  mkdir -p "$(dirname "$TARGET")" "$WORK/home"
  # the installer writes a default SEN2COR_HOME under $HOME: keep that out of the install
  if ! (cd "$WORK" && HOME="$WORK/home" bash "$INSTALLER_FILE" --nox11 --target "$TARGET") > "$WORK/install.log" 2>&1; then
    tail -40 "$WORK/install.log" >&2
    die "the Sen2Cor installer failed (log above)"
  fi
  [[ -x $TARGET/bin/L2A_Process ]] || die "expected $TARGET/bin/L2A_Process after the installer ran, found none"
  rewrite_home "$TARGET" "$WORK/home"
  PKG="$(find "$TARGET/lib" -maxdepth 4 -type d -path '*/site-packages/sen2cor' 2>/dev/null | head -n 1)"
  [[ -n $PKG ]] || die "expected Sen2Cor's package folder $TARGET/lib/python*/site-packages/sen2cor, found none"
  mkdir -p "$PKG/aux_data"
  if [[ -n $LINK ]]; then ln -sfn "$TARGET" "$LINK"; fi
}

rewrite_home() {  # $1 = install dir, $2 = $HOME of the installer run; sets HOME_REWRITE
  local dir=$1 home=$2 f line value n total=0 found=0 already=0 where=() files=() got
  [[ -d $dir ]] || die "expected a Sen2Cor install folder at '$dir', found none"
  [[ -f $dir/L2A_Bashrc ]] && files+=("$dir/L2A_Bashrc")
  for f in "$dir"/bin/*; do
    [[ -f $f && ! -L $f ]] && grep -Iq . "$f" 2>/dev/null && files+=("$f")  # text launchers only
  done
  local re='^([[:space:]]*)(export[[:space:]]+)?SEN2COR_HOME=("([^"]*)"|'"'"'([^'"'"']*)'"'"'|([^[:space:];]*))(.*)$'
  for f in "${files[@]}"; do
    n=0
    while IFS= read -r line || [[ -n $line ]]; do
      if [[ $line =~ $re ]]; then
        found=$((found + 1))
        value="${BASH_REMATCH[4]}${BASH_REMATCH[5]}${BASH_REMATCH[6]}"
        local indent="${BASH_REMATCH[1]}" rest="${BASH_REMATCH[7]}"
        if [[ $value == "\${SEN2COR_HOME:-"* ]]; then
          already=$((already + 1))
        else
          if [[ -n $home && $home != / ]]; then value="${value//"$home"/\$HOME}"; fi
          line="${indent}export SEN2COR_HOME=\"\${SEN2COR_HOME:-$value}\"$rest"
          n=$((n + 1))
        fi
      elif [[ -n $home && $home != / && $line == *"$home"* ]]; then
        line="${line//"$home"/\$HOME}"  # other paths under the installer's $HOME
        n=$((n + 1))
      fi
      printf '%s\n' "$line"
    done < "$f" > "$f.s2kit-new"
    if [[ $n -gt 0 ]]; then
      cat "$f.s2kit-new" > "$f"  # keeps the file's mode
      where+=("${f#"$dir"/}: $n line(s)")
      total=$((total + n))
    fi
    rm -f "$f.s2kit-new"
  done
  if [[ $found == 0 ]]; then
    die "expected L2A_Bashrc or a bin/ launcher in $dir to set SEN2COR_HOME, found no such line: cannot make Sen2Cor use s2kit's per-task home (look for where this Sen2Cor sets its home and report it)"
  fi
  if [[ -f $dir/L2A_Bashrc ]]; then
    # shellcheck disable=SC2016  # $1 and SEN2COR_HOME expand in the child shell
    got="$(env -i PATH=/usr/bin:/bin HOME=/nonexistent SEN2COR_HOME=/s2kit-probe/home bash -c '. "$1" >/dev/null 2>&1; printf %s "${SEN2COR_HOME:-}"' _ "$dir/L2A_Bashrc")" || true
    [[ $got == /s2kit-probe/home ]] || die "expected L2A_Bashrc to keep a SEN2COR_HOME from the environment after the rewrite, found it sets '$got'"
  fi
  value="$(grep -hE '^[[:space:]]*export SEN2COR_HOME=' "${files[@]}" | head -n 1 | sed 's/^[[:space:]]*export //')"
  if [[ $total == 0 ]]; then
    HOME_REWRITE="not needed: $value"
  else
    HOME_REWRITE="$(IFS=,; echo "${where[*]}") -> $value"
  fi
  log "SEN2COR_HOME: $HOME_REWRITE"
}

find_s2kit() {
  if [[ -z $S2KIT ]]; then S2KIT="$(command -v s2kit || true)"; fi
  [[ -n $S2KIT && -x $S2KIT ]] || die "expected the s2kit command (for ESACCI-LC and the GIPPs), found none; pass --s2kit EXE"
}

install_esacci() {
  if [[ -z $ESACCI ]]; then
    warn "no ESACCI-LC archive given (--esacci): Sen2Cor will classify WITHOUT the land-cover, water and snow maps"
    ESACCI_DIGEST=none
    return
  fi
  "$S2KIT" aux esacci --source "$ESACCI" --dest "$PKG/aux_data" || die "s2kit aux esacci failed for $ESACCI"
  "$S2KIT" aux esacci --check "$PKG/aux_data" >/dev/null || die "s2kit aux esacci --check failed after the install"
  # digest of what is installed: sha256 of the "sha256  name" lines s2kit recorded
  ESACCI_DIGEST="$("$S2KIT_PYTHON" - "$PKG/aux_data/.s2kit-esacci.json" <<'EOF'
import hashlib, json, sys
files = json.load(open(sys.argv[1], encoding="utf-8"))["files"]
text = "".join(f"{v['sha256']}  {k}\n" for k, v in sorted(files.items()))
print(hashlib.sha256(text.encode()).hexdigest())
EOF
)" || ESACCI_DIGEST=unknown
}

render_gipps() {
  "$S2KIT" gipp render --out "$GIPP_DIR" --sen2cor "$VERSION" --threads 1 >/dev/null \
    || die "s2kit gipp render failed"
  "$S2KIT" gipp check "$GIPP_DIR"/*.xml >/dev/null || die "the rendered GIPPs fail s2kit gipp check"
}

record() {
  local s2kit_version src_digest="" base_os
  s2kit_version="$("$S2KIT" --version | awk '{print $2}')"
  if [[ -n $S2KIT_SRC && -d $S2KIT_SRC/s2kit ]]; then
    src_digest="$(cd "$S2KIT_SRC" && find s2kit pyproject.toml -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 \
      | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
  fi
  base_os="$(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release 2>/dev/null || true)"
  base_os="${base_os:-unknown} $(cat /etc/debian_version 2>/dev/null || true)"
  {
    echo "sen2cor_version=$VERSION"
    echo "installer=${INSTALLER_FILE##*/}"
    echo "installer_source=$INSTALLER"
    echo "installer_sha256=$INSTALLED_SHA256"
    echo "installer_pinned=$PINNED"
    echo "target=$TARGET"
    echo "esacci_source=${ESACCI:-none}"
    echo "esacci_digest=$ESACCI_DIGEST"
    echo "gipp_dir=$GIPP_DIR"
    echo "sen2cor_home_rewrite=$HOME_REWRITE"
    echo "s2kit_version=$s2kit_version"
  } > "$TARGET/.s2kit-install"
  if [[ -n $LABELS ]]; then
    {
      echo "org.s2kit.sen2cor.installer ${INSTALLER_FILE##*/}"
      echo "org.s2kit.sen2cor.installer.source $INSTALLER"
      echo "org.s2kit.sen2cor.installer.sha256 $INSTALLED_SHA256"
      echo "org.s2kit.sen2cor.installer.pinned $PINNED"
      echo "org.s2kit.sen2cor.installer.check makeself --check passed"
      echo "org.s2kit.sen2cor.target $TARGET"
      echo "org.s2kit.esacci.source ${ESACCI:-none}"
      echo "org.s2kit.esacci.digest $ESACCI_DIGEST"
      echo "org.s2kit.gipp.dir $GIPP_DIR"
      echo "org.s2kit.sen2cor.home-rewrite $HOME_REWRITE"
      echo "org.s2kit.version $s2kit_version"
      [[ -z $src_digest ]] || echo "org.s2kit.source.sha256 $src_digest"
      echo "org.s2kit.base.os $base_os"
      if [[ ${#APT_OPTS[@]} -gt 0 ]]; then
        echo "org.s2kit.build.ca-bundle sha256 $(sha256sum "$CA_BUNDLE" | cut -d' ' -f1) (trusted for the build's downloads only, not in the image)"
      fi
    } >> "$LABELS"
  fi
}

# ---------------------------------------------------------------------------- main
if [[ -n $REWRITE_ONLY ]]; then
  [[ $REWRITE_ONLY == /* ]] || die "expected an absolute --rewrite-home path, found '$REWRITE_ONLY'"
  rewrite_home "$REWRITE_ONLY" "$INSTALL_HOME"
  if [[ -f $REWRITE_ONLY/.s2kit-install ]]; then
    grep -v '^sen2cor_home_rewrite=' "$REWRITE_ONLY/.s2kit-install" > "$WORK/record" || true
    echo "sen2cor_home_rewrite=$HOME_REWRITE" >> "$WORK/record"
    cat "$WORK/record" > "$REWRITE_ONLY/.s2kit-install"
  fi
  exit 0
fi
# prerequisites first: fail before anything is downloaded or installed
if [[ $APT == 0 ]] && ! command -v file >/dev/null; then
  die "the Sen2Cor installer needs the 'file' command, found none (Debian: apt-get install file)"
fi
if [[ -z $S2KIT_SRC ]]; then find_s2kit; fi
# A local installer is verified first: a wrong checksum fails before anything is installed.
if is_url "$INSTALLER"; then
  if [[ $APT == 1 ]]; then apt_packages; fi
  fetch_installer
  check_installer_release
  verify_installer
else
  fetch_installer
  check_installer_release
  verify_installer
  if [[ $APT == 1 ]]; then apt_packages; fi
fi
if [[ -n $S2KIT_SRC ]]; then install_s2kit; fi
S2KIT_PYTHON="$(head -n 1 "$S2KIT" | sed -n 's/^#! *\([^ ]*python[^ ]*\).*/\1/p')"
[[ -n $S2KIT_PYTHON && -x $S2KIT_PYTHON ]] || S2KIT_PYTHON=python3
run_installer
install_esacci
render_gipps
record
log "done: Sen2Cor $VERSION in $TARGET (installer sha256 $INSTALLED_SHA256, pinned: $PINNED)"
