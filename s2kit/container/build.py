"""The Sen2Cor Apptainer image: build command, installer pins, lock file, labels, def parsing.

Library behind ``s2kit container build|labels|lock`` and ``make container``:

* :func:`parse_def` -- a small parser of Apptainer definition files (header, ``%sections``,
  ``%arguments``, ``%labels``, ``%files``, ``{{ VAR }}`` build arguments). Used by the static
  tests and to refuse a ``--build-arg`` the def does not declare (Apptainer makes an unused one
  FATAL only after it started).
* :func:`plan_build` -- options in, the exact ``apptainer build`` argument list out (golden-tested):
  build arguments, read-only binds for local installer/ESACCI files, the installer sha256 to
  enforce and where it comes from (argument, ``containers/checksums.tsv``, the lock, or none =
  trust on first use).
* :func:`run_build` -- run it, stream its output, turn a failure into one clear error (the
  install script's own ``error:`` line; a hint when the build had no network).
* :func:`read_labels`, :func:`update_lock` -- what the image records, and the TOFU lock
  (``containers/sen2cor.lock``) that pins the installer sha256 of later builds.
* :func:`check_binds` -- (:mod:`s2kit.container.exec`, next to the binds it checks; re-exported)
  every path ``apptainer exec`` will bind exists before anything is launched.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import ConfigError, InputError, S2kitError, UsageError, display_path
from ..fsutil import atomic_write_text
from ..versions import SUPPORTED_VERSIONS, installer_file
from .exec import check_binds

__all__ = [
    "INSTALLERS",
    "REQUIRED_LABELS",
    "BuildOptions",
    "BuildPlan",
    "ApptainerMissing",
    "BuildResult",
    "DefFile",
    "ImageBuildError",
    "build_image",
    "ca_bundle_choice",
    "check_binds",
    "diagnose_build_output",
    "installer_name",
    "installer_url",
    "parse_def",
    "plan_build",
    "read_checksums",
    "read_labels",
    "read_lock",
    "require_apptainer",
    "run_build",
    "update_lock",
]

#: Sen2Cor version -> (installer file name, official URL). ESA's server layout (step.esa.int);
#: the versions and their installer releases are s2kit.versions'.
INSTALLERS: dict[str, tuple[str, str]] = {
    v: (installer_file(v), f"https://step.esa.int/thirdparties/sen2cor/{v}.0/{installer_file(v)}")
    for v in SUPPORTED_VERSIONS
}
#: Labels every s2kit image must carry (static in %labels, or written by install-sen2cor.sh).
REQUIRED_LABELS = (
    "org.s2kit.sen2cor.version",
    "org.s2kit.sen2cor.installer",
    "org.s2kit.sen2cor.installer.sha256",
    "org.s2kit.sen2cor.installer.pinned",
    "org.s2kit.version",
    "org.s2kit.base",
)
LOCK_FORMAT = 1
_SHA256_RE = re.compile(r"^[0-9a-f]{64}\Z")
_TEMPLATE_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_SECTION_RE = re.compile(r"^%([A-Za-z]+)\b[ \t]*(.*)\Z")
_HEADER_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*):[ \t]*(.*)\Z")


class ImageBuildError(S2kitError):
    """``apptainer build`` failed; the message carries the reason found in its output."""


# =========================================================================== definition files
@dataclass(frozen=True)
class Section:
    name: str  # lower case, without '%'
    args: str  # the rest of the section line, e.g. "-c /bin/bash" or an app name
    lines: tuple[str, ...]
    line: int  # 1-based line of the '%name' line

    @property
    def body(self) -> str:
        return "\n".join(self.lines) + "\n"


@dataclass(frozen=True)
class DefFile:
    """A parsed Apptainer definition file."""

    header: dict[str, str]  # keys as written (Bootstrap, From, ...)
    sections: dict[str, Section]
    path: Path | None = None

    def header_value(self, key: str) -> str | None:
        for k, v in self.header.items():
            if k.lower() == key.lower():
                return v
        return None

    def section(self, name: str) -> Section:
        try:
            return self.sections[name]
        except KeyError:
            raise InputError(f"expected a %{name} section, found none", self.path) from None

    def arguments(self) -> dict[str, str]:
        """``%arguments``: ``KEY=VALUE`` lines (the build-argument defaults)."""
        out: dict[str, str] = {}
        if "arguments" not in self.sections:
            return out
        for raw in self.sections["arguments"].lines:
            text = raw.strip()
            if not text or text.startswith("#"):
                continue
            key, sep, value = text.partition("=")
            if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()):
                raise InputError(f"expected KEY=VALUE in %arguments, found {text!r}", self.path)
            out[key.strip()] = value.strip()
        return out

    def labels(self) -> dict[str, str]:
        """``%labels``: ``name value`` lines (value may hold spaces)."""
        out: dict[str, str] = {}
        for raw in self.sections.get("labels", Section("labels", "", (), 0)).lines:
            text = raw.strip()
            if not text or text.startswith("#"):
                continue
            name, _, value = text.partition(" ")
            out[name] = value.strip()
        return out

    def files(self) -> list[tuple[str, str]]:
        """``%files``: (source, destination) pairs (destination = source when omitted)."""
        out: list[tuple[str, str]] = []
        for raw in self.sections.get("files", Section("files", "", (), 0)).lines:
            text = raw.strip()
            if not text or text.startswith("#"):
                continue
            parts = shlex.split(text)
            if len(parts) > 2:
                raise InputError(f"expected 'SOURCE [DESTINATION]' in %files, found {text!r}", self.path)
            out.append((parts[0], parts[-1]))
        return out

    def template_vars(self) -> set[str]:
        """Every ``{{ VAR }}`` used in the header or a section (not in %arguments itself)."""
        used = {m for v in self.header.values() for m in _TEMPLATE_RE.findall(v)}
        for name, sec in self.sections.items():
            if name != "arguments":
                used |= set(_TEMPLATE_RE.findall(sec.body))
        return used

    def render(self, text: str, args: Mapping[str, str] | None = None) -> str:
        """*text* with ``{{ VAR }}`` replaced by *args* over the %arguments defaults."""
        values = {**self.arguments(), **(args or {})}

        def sub(m: re.Match[str]) -> str:
            if m.group(1) not in values:
                raise InputError(f"build var {m.group(1)} is not defined in %arguments", self.path)
            return values[m.group(1)]

        return _TEMPLATE_RE.sub(sub, text)


def parse_def(text: str, path: Path | None = None) -> DefFile:
    """Split a definition file into its header (``Key: value``) and ``%sections``.

    Like Apptainer: comments (``#``) and blank lines in the header are skipped; a line that
    starts with ``%name`` at column 0 opens a section; everything until the next such line is
    its body (kept verbatim, indentation included). A repeated section is refused.
    """
    header: dict[str, str] = {}
    sections: dict[str, Section] = {}
    current: tuple[str, str, int] | None = None
    body: list[str] = []

    def close() -> None:
        if current is None:
            return
        name, args, line = current
        while body and not body[-1].strip():
            body.pop()
        if name in sections:
            raise InputError(f"expected one %{name} section, found another on line {line}", path)
        sections[name] = Section(name, args, tuple(body), line)

    for no, raw in enumerate(text.splitlines(), 1):
        m = _SECTION_RE.match(raw)
        if m:
            close()
            current = (m.group(1).lower(), m.group(2).strip(), no)
            body = []
            continue
        if current is not None:
            body.append(raw)
            continue
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        h = _HEADER_RE.match(stripped)
        if not h:
            raise InputError(f"expected 'Key: value' in the header, found {stripped!r} (line {no})", path)
        header[h.group(1)] = h.group(2).strip()
    close()
    if not any(k.lower() == "bootstrap" for k in header):
        raise InputError("expected a 'Bootstrap:' header line, found none", path)
    return DefFile(header, sections, path)


def read_def(path: str | os.PathLike[str]) -> DefFile:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"expected a readable definition file, found: {exc.strerror}", p) from exc
    return parse_def(text, p)


# =========================================================================== pins
@dataclass(frozen=True)
class ChecksumRow:
    version: str
    installer: str
    sha256: str
    source: str


def read_checksums(path: str | os.PathLike[str]) -> list[ChecksumRow]:
    """``containers/checksums.tsv``: version, installer file name, sha256, source (tab-separated)."""
    p = Path(path)
    rows: list[ChecksumRow] = []
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        return rows
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) < 3 or not _SHA256_RE.match(cols[2].strip().lower()):
            raise InputError(f"line {no}: expected 'version<TAB>installer<TAB>sha256<TAB>source'", p)
        rows.append(
            ChecksumRow(cols[0].strip(), cols[1].strip(), cols[2].strip().lower(), "\t".join(cols[3:]))
        )
    return rows


def installer_name(version: str) -> str:
    return INSTALLERS[_version(version)][0]


def installer_url(version: str) -> str:
    return INSTALLERS[_version(version)][1]


def _version(text: str) -> str:
    from ..gipp import normalize_version

    v = normalize_version(text)
    if v not in INSTALLERS:  # pragma: no cover - gipp and image support the same versions
        raise ConfigError(f"expected a Sen2Cor version with a known installer ({', '.join(INSTALLERS)})")
    return v


def read_lock(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The TOFU lock (JSON); an absent file is an empty lock."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"s2kit_container_lock": LOCK_FORMAT, "installers": {}}
    except (OSError, ValueError) as exc:
        raise InputError(f"expected a JSON lock written by 's2kit container build', found: {exc}", p) from exc
    if not isinstance(doc, dict) or doc.get("s2kit_container_lock") != LOCK_FORMAT:
        raise InputError(f"expected s2kit_container_lock = {LOCK_FORMAT}", p)
    doc.setdefault("installers", {})
    return doc


def update_lock(
    path: str | os.PathLike[str], labels: Mapping[str, str], image: Path | None = None
) -> dict[str, Any]:
    """Record the installer an image was built from (its labels) under its file name.

    A stand-in installer has another file name than ESA's, so it never pins the real one. An
    existing entry with another sha256 is refused: that is exactly what a lock must catch.
    """
    name = labels.get("org.s2kit.sen2cor.installer", "")
    digest = labels.get("org.s2kit.sen2cor.installer.sha256", "")
    if not name or not _SHA256_RE.match(digest):
        raise InputError(
            "expected org.s2kit.sen2cor.installer(.sha256) labels in the image, found none", image
        )
    doc = read_lock(path)
    entry = doc["installers"].get(name)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    if isinstance(entry, dict) and entry.get("sha256") not in (None, digest):
        raise ImageBuildError(
            f"installer {name}: the lock pins sha256 {entry.get('sha256')}, the image has {digest}; "
            "the installer changed since it was first recorded (remove the entry only if that is expected)",
            Path(path),
        )
    new = dict(entry) if isinstance(entry, dict) else {"first_recorded": now}
    new.update(
        {
            "sen2cor_version": labels.get("org.s2kit.sen2cor.version", ""),
            "sha256": digest,
            "pinned_by": labels.get("org.s2kit.sen2cor.installer.pinned", ""),
            "source": labels.get("org.s2kit.sen2cor.installer.source", ""),
            "last_image": str(image) if image is not None else new.get("last_image"),
            "last_recorded": now,
        }
    )
    doc["installers"][name] = new
    atomic_write_text(path, json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return doc


# =========================================================================== build
@dataclass(frozen=True)
class BuildOptions:
    definition: Path = Path("containers/sen2cor.def")
    out: Path | None = None  # default: sen2cor-<version>.sif in the working directory
    sen2cor_version: str = "2.9"
    installer: str | None = None  # URL or file; None: ESA's URL for the version
    installer_sha256: str | None = None
    esacci: str | None = None  # URL or file of ESACCI-LC-L4-ALL-FOR-SEN2COR.zip
    mirror: str | None = None
    bootstrap: str | None = None
    from_image: str | None = None
    osversion: str | None = None
    build_args: tuple[tuple[str, str], ...] = ()
    apptainer: tuple[str, ...] = ("apptainer",)
    fakeroot: bool = False
    force: bool = False
    lock: Path | None = None  # default: <def dir>/sen2cor.lock; use_lock=False: none
    use_lock: bool = True
    checksums: Path | None = None  # default: <def dir>/checksums.tsv
    ca_bundle: Path | None = None  # PEM bundle trusted for the build's downloads (TLS proxies)


@dataclass
class BuildPlan:
    argv: list[str]
    cwd: Path  # the build context: %files sources are relative to it
    out: Path
    definition: Path
    build_args: dict[str, str]
    binds: list[str]
    installer: str
    installer_file_name: str
    sha256: str | None
    sha256_origin: str  # argument | table | lock | none
    lock: Path | None
    notes: list[str] = field(default_factory=list)
    ca_bundle: Path | None = None  # copied to ca_stage by run_build, removed afterwards
    ca_stage: Path | None = None

    def shell_line(self) -> str:
        return f"cd {shlex.quote(str(self.cwd))} && {shlex.join(self.argv)}"


#: ESA's installer names carry their release (``Sen2Cor-02.09.00-Linux64.run``); the same rule as
#: ``check_installer_release`` in containers/install-sen2cor.sh (case aside: stricter here).
_INSTALLER_RELEASE_RE = re.compile(r"^Sen2Cor-([0-9]{1,3})\.([0-9]{1,3})\.[0-9]{1,3}-", re.IGNORECASE)


def installer_release(file_name: str) -> str | None:
    """The Sen2Cor release an installer file name is named for (``Sen2Cor-02.09.00-...`` -> ``2.9``);
    None for a name without one (a renamed stand-in)."""
    match = _INSTALLER_RELEASE_RE.match(file_name)
    return f"{int(match[1])}.{int(match[2])}" if match else None


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def _local(text: str, what: str) -> Path:
    p = Path(text).expanduser()
    if not p.is_file():
        raise InputError(f"expected {what} (a file or an http(s) URL), found no file at {display_path(p)}")
    p = p.resolve()
    if ":" in str(p) or "," in str(p):
        raise InputError(f"expected a path without ':' or ',' (apptainer --bind), found {display_path(p)}")
    return p


def plan_build(opts: BuildOptions) -> BuildPlan:
    """The ``apptainer build`` command for *opts* (no side effect besides reading files)."""
    definition = opts.definition.expanduser().resolve()
    d = read_def(definition)
    declared = d.arguments()
    context = definition.parent.parent
    if not (context / "pyproject.toml").is_file() or not (context / "s2kit" / "__init__.py").is_file():
        raise InputError(
            f"expected the def inside an s2kit checkout (<repo>/containers/{definition.name}: %files copies "
            f"the s2kit source into the image), found no pyproject.toml + s2kit/ in {display_path(context)}",
            definition,
        )
    version = _version(opts.sen2cor_version)
    official_name, official_url = INSTALLERS[version]
    args: dict[str, str] = {"SEN2COR_VERSION": version}
    binds: list[str] = []
    notes: list[str] = []

    def bind_ro(p: Path) -> None:
        spec = f"{p.parent}:{p.parent}:ro"
        if spec not in binds:
            binds.append(spec)

    # installer
    if opts.installer is None or opts.installer in ("", "default"):
        installer, file_name = official_url, official_name
    elif _is_url(opts.installer):
        installer, file_name = opts.installer, opts.installer.rstrip("/").rsplit("/", 1)[-1]
    else:
        local = _local(opts.installer, "the Sen2Cor installer")
        installer, file_name = str(local), local.name
        bind_ro(local)
    release = installer_release(file_name)
    if release is not None and release != version:
        # else the image is labelled (and every run recorded as) {version}, built from another release
        raise UsageError(
            f"expected the installer of Sen2Cor {version} ({official_name}), found {file_name} "
            f"(Sen2Cor {release}); pass --sen2cor-version {release}, or the {version} installer"
        )
    args["SEN2COR_INSTALLER"] = installer

    # the sha256 to enforce: argument > checksums.tsv > lock > none (trust on first use)
    checksums = opts.checksums or definition.parent / "checksums.tsv"
    table = {r.installer: r for r in read_checksums(checksums)}
    lock_path = None if not opts.use_lock else (opts.lock or definition.parent / "sen2cor.lock")
    sha: str | None = None
    origin = "none"
    entry = read_lock(lock_path)["installers"].get(file_name) if lock_path is not None else None
    locked = str(entry.get("sha256", "")) if isinstance(entry, dict) else ""
    if opts.installer_sha256:
        sha = opts.installer_sha256.strip().lower()
        if not _SHA256_RE.match(sha):
            raise UsageError(
                f"expected --installer-sha256 to be 64 hex digits, found {opts.installer_sha256!r}"
            )
        row = table.get(file_name)
        if row is not None and row.sha256 != sha:
            raise UsageError(
                f"--installer-sha256 {sha} contradicts the pin {row.sha256} of {file_name} in "
                f"{display_path(checksums)}; fix one of them"
            )
        if locked and locked != sha:
            raise UsageError(
                f"--installer-sha256 {sha} contradicts the sha256 {locked} the lock recorded for {file_name} "
                f"({display_path(lock_path or '')}); remove that entry only if the installer really changed"
            )
        origin = "argument"
    elif file_name in table:
        sha, origin = table[file_name].sha256, "table"  # install-sen2cor.sh reads the table itself
    elif _SHA256_RE.match(locked):
        sha, origin = locked, "lock"
    if origin in ("argument", "lock"):
        assert sha is not None
        args["SEN2COR_INSTALLER_SHA256"] = sha
        args["SEN2COR_INSTALLER_SHA256_ORIGIN"] = origin
    if origin == "none":
        notes.append(
            f"WARNING: no pinned sha256 for {file_name} (no --installer-sha256, no row in "
            f"{checksums.name}, no entry in the lock): it will be installed on TRUST ON FIRST USE"
            + (f"; this build records it in {display_path(lock_path)}" if lock_path else "")
        )

    # ESACCI-LC
    if not opts.esacci:
        raise UsageError(
            "expected --esacci FILE_OR_URL, found none: the ESACCI-LC-L4-ALL-FOR-SEN2COR.zip archive (6 GB, "
            "from the CCI Land Cover viewer's download page; containers/README.md) is installed into the "
            "image's aux_data; run: s2kit container build --esacci /path/ESACCI-LC-L4-ALL-FOR-SEN2COR.zip "
            "(from a checkout: make container ESACCI=/path/ESACCI-LC-L4-ALL-FOR-SEN2COR.zip)"
        )
    if _is_url(opts.esacci):
        args["ESACCI_SOURCE"] = opts.esacci
    else:
        local = _local(opts.esacci, "the ESACCI-LC archive")
        args["ESACCI_SOURCE"] = str(local)
        bind_ro(local)

    out = (opts.out or Path(f"sen2cor-{version}.sif")).expanduser().absolute()
    ca_bundle = ca_stage = None
    if opts.ca_bundle is not None:
        ca_bundle = opts.ca_bundle.expanduser().absolute()
        if not ca_bundle.is_file():
            raise InputError(
                f"expected a PEM CA bundle (--ca-bundle), found no file at {display_path(ca_bundle)}"
            )
        # a private copy beside the image: binding the bundle's own folder (/etc/ssl/certs)
        # would hide the image's folder of the same name during %post
        ca_stage = out.parent / f".{out.name}.build-ca" / "ca-bundle.pem"
        args["BUILD_CA_BUNDLE"] = str(ca_stage)
        bind_ro(ca_stage)

    for key, value in (
        ("MIRROR", opts.mirror),
        ("BOOTSTRAP", opts.bootstrap),
        ("FROM", opts.from_image),
        ("OSVERSION", opts.osversion),
    ):
        if value:
            args[key] = value
    for key, value in opts.build_args:
        args[key] = value
    unknown = sorted(set(args) - set(declared))
    if unknown:
        raise UsageError(
            f"expected build arguments the def declares ({', '.join(sorted(declared))}), "
            f"found {', '.join(unknown)} (apptainer would stop with 'unused build args')",
        )
    if args.get("BOOTSTRAP", declared.get("BOOTSTRAP")) == "localimage" and args.get("FROM"):
        base = _local(args["FROM"], "the localimage base (FROM)")
        args["FROM"] = str(base)  # apptainer would resolve a relative one against the build context
        bind_ro(base)

    if not out.parent.is_dir():
        raise InputError(
            f"expected an existing folder for the image, found none at {display_path(out.parent)}"
        )
    if out.exists() and not opts.force:
        raise InputError(
            "expected a new image path, found an existing file (pass --force to replace it)", out
        )
    argv = [*opts.apptainer, "build"]
    if opts.fakeroot:
        argv.append("--fakeroot")
    if opts.force:
        argv.append("--force")
    for spec in binds:
        argv += ["--bind", spec]
    for key in sorted(args):
        argv += ["--build-arg", f"{key}={args[key]}"]
    rel_def = definition.relative_to(context)
    argv += [str(out), str(rel_def)]
    return BuildPlan(
        argv=argv,
        cwd=context,
        out=out,
        definition=definition,
        build_args=args,
        binds=binds,
        installer=installer,
        installer_file_name=file_name,
        sha256=sha,
        sha256_origin=origin,
        lock=lock_path,
        notes=notes,
        ca_bundle=ca_bundle,
        ca_stage=ca_stage,
    )


# network trouble as apptainer / debootstrap / apt / pip / curl / our script report it
_NETWORK_PATTERNS = (
    r"no such host",
    r"dial tcp",
    r"Temporary failure in name resolution",
    r"Could not resolve host",
    r"Failed getting release file",
    r"Failure trying to run: chroot .* mount",
    r"Network is unreachable",
    r"Connection (?:refused|timed out)",
    r"Couldn't download",
    r"Failed to fetch",
    r"Max retries exceeded",
    r"has no network",
    r"could not download",
    r"PyPI unreachable",
)
_NETWORK_RE = re.compile("|".join(_NETWORK_PATTERNS), re.IGNORECASE)
_SCRIPT_ERROR_RE = re.compile(r"install-sen2cor\.sh: error: (.*)")


def diagnose_build_output(lines: Iterable[str]) -> str:
    """One sentence on why a build failed, from the tail of its output."""
    tail = list(lines)
    script = [m.group(1).strip() for line in tail if (m := _SCRIPT_ERROR_RE.search(line))]
    network = next((line.strip() for line in tail if _NETWORK_RE.search(line)), None)
    fatal = next((line.strip() for line in reversed(tail) if line.lstrip().startswith("FATAL")), None)
    parts: list[str] = []
    if script:
        parts.append(f"install-sen2cor.sh: {script[-1]}")
    if network:
        parts.append(
            f"the build has no network for what it downloads ({network[:160]}): it needs the Debian mirror "
            "(--mirror), PyPI (s2kit's dependencies) and, unless you pass files, ESA's installer "
            "(--installer FILE) and the ESACCI-LC archive (--esacci FILE)"
        )
    if not parts and fatal:
        parts.append(fatal[:300])
    if not parts:
        parts.append(tail[-1].strip()[:300] if tail else "no output")
    return "; ".join(parts)


@dataclass(frozen=True)
class BuildResult:
    """A built and checked image (:func:`build_image`)."""

    seconds: float
    image: Path
    size_bytes: int
    labels: dict[str, str]
    lock: Path | None = None  # the lock file that now records the installer (None: no lock)

    @property
    def trust_on_first_use(self) -> bool:
        """The installer's sha256 was pinned nowhere (it was recorded, not checked)."""
        return self.labels.get("org.s2kit.sen2cor.installer.pinned", "").startswith("none")

    def summary(self) -> list[str]:
        """What was built, from what, and where the installer is now pinned (one fact a line)."""
        lab = self.labels
        lines = [
            f"built {self.image} ({self.size_bytes / 1e6:.0f} MB) in {self.seconds:.0f} s",
            f"Sen2Cor {lab['org.s2kit.sen2cor.version']} from {lab['org.s2kit.sen2cor.installer']} "
            f"sha256 {lab['org.s2kit.sen2cor.installer.sha256']} "
            f"(pinned: {lab['org.s2kit.sen2cor.installer.pinned']})",
            f"s2kit {lab['org.s2kit.version']}; base {lab['org.s2kit.base']}",
        ]
        if self.lock is not None:
            lines.append(f"lock: {self.lock} records {lab['org.s2kit.sen2cor.installer']}")
        return lines

    def warning(self) -> str | None:
        """The trust-on-first-use warning, when the installer was pinned nowhere."""
        if not self.trust_on_first_use:
            return None
        later = "the lock now pins it for later builds" if self.lock is not None else "nothing pins it"
        return f"the installer was installed on TRUST ON FIRST USE (no pinned sha256); {later}"


def _which(argv0: str) -> str | None:
    return argv0 if os.sep in argv0 and os.access(argv0, os.X_OK) else shutil.which(argv0)


def default_ca_bundle(env: Mapping[str, str] | None = None) -> Path | None:
    """The CA bundle this host's own downloads trust ($PIP_CERT, $SSL_CERT_FILE, ...), if any.

    Behind a TLS-intercepting proxy, pip and curl inside the build need it as well; outside one
    it is harmless (the system bundle).
    """
    env = os.environ if env is None else env
    for var in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        value = env.get(var, "").strip()
        if value and Path(value).is_file():
            return Path(value)
    return None


class ApptainerMissing(ConfigError):
    """The apptainer command is not there (a build or an inspect cannot start)."""


def require_apptainer(apptainer: Sequence[str]) -> None:
    if not apptainer or _which(apptainer[0]) is None:
        raise ApptainerMissing(
            f"expected the apptainer command ({' '.join(apptainer) or 'empty'}) on PATH, found none: install "
            "Apptainer >= 1.2 (https://apptainer.org/docs/admin/main/installation.html; "
            "containers/README.md), build on a machine that has it, or name it with --apptainer / "
            "$S2KIT_APPTAINER"
        )


def run_build(
    plan: BuildPlan,
    echo: Callable[[str], None] | None = None,
    env: Mapping[str, str] | None = None,
) -> float:
    """Run ``apptainer build``; stream its output to *echo*; return the seconds it took."""
    require_apptainer(plan.argv[: plan.argv.index("build")])
    say = echo or (lambda _line: None)
    tail: deque[str] = deque(maxlen=400)
    if plan.ca_bundle is not None and plan.ca_stage is not None:
        plan.ca_stage.parent.mkdir(mode=0o755, exist_ok=True)
        shutil.copyfile(plan.ca_bundle, plan.ca_stage)
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            plan.argv,
            cwd=plan.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            text=True,
            errors="replace",
        )
        assert proc.stdout is not None
        with proc:
            for line in proc.stdout:
                tail.append(line.rstrip("\n"))
                say(line.rstrip("\n"))
    finally:
        if plan.ca_stage is not None:
            shutil.rmtree(plan.ca_stage.parent, ignore_errors=True)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise ImageBuildError(
            f"apptainer build failed (exit {proc.returncode}) after {seconds:.0f} s: "
            + diagnose_build_output(tail),
            plan.out,
        )
    if not plan.out.is_file():
        raise ImageBuildError("apptainer build exited 0 but wrote no image", plan.out)
    return seconds


def ca_bundle_choice(value: str | None, env: Mapping[str, str] | None = None) -> Path | None:
    """The CA bundle a build trusts: *value* (``"none"`` or blank: none), else this host's
    default (:func:`default_ca_bundle`)."""
    if value is None:
        return default_ca_bundle(env)
    return None if value.strip().lower() in ("", "none") else Path(value)


def build_image(opts: BuildOptions, echo: Callable[[str], None] | None = None) -> BuildResult:
    """Build the Sen2Cor image, check its labels, record its installer in the lock.

    Needs apptainer (:class:`ApptainerMissing` first, before anything else is checked);
    progress and apptainer's output go to *echo*. Raises :class:`ImageBuildError` when the
    build fails or the image lacks a required label (then the lock is left as it was).
    """
    say = echo or (lambda _line: None)
    require_apptainer(opts.apptainer)  # first: no point in checking the rest without it
    plan = plan_build(opts)
    for note in plan.notes:
        say(f"s2kit: {note}")
    say(f"s2kit: building {plan.out} (in {plan.cwd}): {plan.shell_line()}")
    seconds = run_build(plan, echo=say)
    labels = read_labels(plan.out, opts.apptainer)
    missing = missing_labels(labels)
    if missing:
        raise ImageBuildError(f"built, but the image lacks the labels {', '.join(missing)}", plan.out)
    if plan.lock is not None:
        update_lock(plan.lock, labels, plan.out)
    return BuildResult(seconds, plan.out, plan.out.stat().st_size, labels, plan.lock)


def read_labels(image: str | os.PathLike[str], apptainer: Sequence[str] = ("apptainer",)) -> dict[str, str]:
    """``apptainer inspect --labels --json IMAGE`` as a dict."""
    require_apptainer(apptainer)
    argv = [*apptainer, "inspect", "--labels", "--json", str(image)]
    proc = subprocess.run(argv, capture_output=True, text=True, errors="replace")
    if proc.returncode != 0:
        raise InputError(
            f"expected an image apptainer can inspect, found: {proc.stderr.strip()[-300:]}", Path(image)
        )
    return parse_labels_json(proc.stdout)


def parse_labels_json(text: str) -> dict[str, str]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise InputError(f"expected JSON from apptainer inspect --labels --json, found: {exc}") from None
    labels = doc.get("data", {}).get("attributes", {}).get("labels", doc) if isinstance(doc, dict) else {}
    return {str(k): str(v) for k, v in (labels or {}).items()}


def missing_labels(labels: Mapping[str, str]) -> list[str]:
    return [k for k in REQUIRED_LABELS if not labels.get(k, "").strip()]
