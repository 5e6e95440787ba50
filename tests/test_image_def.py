"""Static checks of the Sen2Cor image: the def, install-sen2cor.sh, checksums, the build command
(golden), the TOFU lock, check_binds. No Apptainer needed (tests/test_image_build.py builds it).

install-sen2cor.sh also runs here for real, natively, on stand-in inputs (tests/support/standins.py):
it is the same script the image's %post runs.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from s2kit.config import BatchConfig
from s2kit.errors import ConfigError, InputError, UsageError
from s2kit.image import (
    INSTALLERS,
    REQUIRED_LABELS,
    BuildOptions,
    ImageBuildError,
    check_binds,
    default_ca_bundle,
    diagnose_build_output,
    parse_def,
    parse_labels_json,
    plan_build,
    read_checksums,
    read_def,
    read_lock,
    update_lock,
)
from tests.support import REPO
from tests.support.configs import config_data
from tests.support.infra_groups import require_tool
from tests.support.standins import corrupt_copy, make_standin_esacci, make_standin_installer

DEF = REPO / "containers" / "sen2cor.def"
SCRIPT = REPO / "containers" / "install-sen2cor.sh"
CHECKSUMS = REPO / "containers" / "checksums.tsv"
NIX_SHA_211 = "8c4aad32549d191cf57e5349dc9785bf807de07c93ea182d711ac89e0d086f75"
SHELL_SECTIONS = ("post", "test", "environment", "runscript")


def need(tool: str) -> str:
    """A Debian tool the static checks run; CI installs it (.ci/run), so CI never skips."""
    return require_tool(tool)


@pytest.fixture(scope="module")
def d() -> Any:
    return read_def(DEF)


# --------------------------------------------------------------------------- the def parses
def test_def_parses_into_its_sections(d: Any) -> None:
    assert list(d.header) == ["Bootstrap", "OSVersion", "MirrorURL", "From"]
    assert d.header_value("bootstrap") == "{{ BOOTSTRAP }}"
    assert set(d.sections) == {
        "arguments", "files", "post", "environment", "runscript", "test", "labels", "help",
    }  # fmt: skip
    args = d.arguments()
    assert args["BOOTSTRAP"] == "debootstrap" and args["OSVERSION"] == "bookworm"
    assert args["MIRROR"] == "http://deb.debian.org/debian"
    assert args["SEN2COR_VERSION"] == "2.9"
    # no empty defaults (apptainer: "build var X is not defined"); every var used and declared
    assert all(v for v in args.values())
    assert d.template_vars() == set(args)


def test_def_installs_through_the_shared_script_and_sets_no_sen2cor_home(d: Any) -> None:
    post = d.section("post").body
    assert "bash /opt/s2kit/build/install-sen2cor.sh" in post
    for flag in ("--installer", "--sha256", "--esacci", "--require-esacci", "--install-s2kit", "--labels"):
        assert flag in post
    env = d.section("environment").body
    assert "export SEN2COR_BIN=/opt/sen2cor/lib/python2.7/site-packages/sen2cor" in env
    assert 'export PATH="$PATH:/opt/sen2cor/bin"' in env
    assert not re.search(r"^\s*(export\s+)?SEN2COR_HOME=", env, re.M)
    assert "SEN2COR_HOME" not in post
    assert d.section("runscript").body.strip() == 'exec s2kit "$@"'
    test = d.section("test").body
    for step in ("L2A_Process --help", "s2kit aux esacci --check", "s2kit gipp check"):
        assert step in test
    # the DEM is bound at run time, never baked
    assert not re.search(r"srtm|dem prepare", post, re.I)
    # %files sources exist, relative to the repository root (the build's working directory)
    for src, dst in d.files():
        assert (REPO / src).exists(), src
        assert dst.startswith("/opt/s2kit/build/")


def test_required_labels_static_or_written_by_the_install_script(d: Any) -> None:
    static = d.labels()
    assert static["org.s2kit.sen2cor.version"] == "{{ SEN2COR_VERSION }}"
    assert d.render(static["org.s2kit.base"]) == (
        "bootstrap=debootstrap osversion=bookworm mirror=http://deb.debian.org/debian from=debian:bookworm-slim"
    )
    script = SCRIPT.read_text()
    dynamic = set(re.findall(r'echo "(org\.s2kit\.[\w.-]+) ', script))
    assert set(REQUIRED_LABELS) <= set(static) | dynamic, set(REQUIRED_LABELS) - set(static) - dynamic
    assert not set(static) & dynamic  # each label has one writer


def test_help_names_the_exec_line_and_the_dem(d: Any) -> None:
    text = d.render(d.section("help").body)
    assert "apptainer exec --cleanenv --no-home" in text and "s2kit worker --run-dir RUN" in text
    assert "Sen2Cor 2.9 image" in text and "DEM is never in the image" in text


# --------------------------------------------------------------------------- shell syntax + shellcheck
def _section_script(d: Any, name: str, tmp_path: Path) -> Path:
    # Apptainer runs %post/%test/%runscript with /bin/sh and sources %environment: POSIX sh
    f = tmp_path / f"{name}.sh"
    f.write_text("#!/bin/sh\n" + d.render(d.section(name).body))
    return f


@pytest.mark.parametrize("name", SHELL_SECTIONS)
def test_sections_pass_sh_n_bash_n_and_shellcheck(d: Any, name: str, tmp_path: Path) -> None:
    f = _section_script(d, name, tmp_path)
    for shell in ("sh", "bash"):
        proc = subprocess.run([shell, "-n", str(f)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([need("shellcheck"), "-s", "sh", str(f)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_install_script_passes_bash_n_and_shellcheck() -> None:
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0
    proc = subprocess.run([need("shellcheck"), str(SCRIPT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
    assert os.access(SCRIPT, os.X_OK)


# --------------------------------------------------------------------------- the small parser
def test_parser_handles_comments_args_files_and_refuses_bad_input() -> None:
    d = parse_def(
        "# comment\nBootstrap: localimage\nFrom: {{ BASE }}\n\n%arguments\n    BASE=x.sif\n"
        "%files\n    a.txt /opt/\n    'b c.txt'\n%labels\n    a.b hello world\n%post -c /bin/bash\n"
        "    echo {{ BASE }}\n\n\n%help\n  text\n"
    )
    assert d.header == {"Bootstrap": "localimage", "From": "{{ BASE }}"}
    assert d.sections["post"].args == "-c /bin/bash" and d.sections["post"].lines == ("    echo {{ BASE }}",)
    assert d.files() == [("a.txt", "/opt/"), ("b c.txt", "b c.txt")]
    assert d.labels() == {"a.b": "hello world"}
    assert d.render(d.sections["post"].body, {"BASE": "y.sif"}).strip() == "echo y.sif"
    with pytest.raises(InputError, match="build var NOPE is not defined"):
        d.render("{{ NOPE }}")
    with pytest.raises(InputError, match="expected a 'Bootstrap:' header line"):
        parse_def("From: x\n%post\n  true\n")
    with pytest.raises(InputError, match="expected one %post section, found another on line 4"):
        parse_def("Bootstrap: docker\n%post\n  a\n%post\n  b\n")
    with pytest.raises(InputError, match="expected 'Key: value' in the header"):
        parse_def("Bootstrap: docker\nnonsense here\n")
    with pytest.raises(InputError, match="expected KEY=VALUE in %arguments"):
        parse_def("Bootstrap: docker\n%arguments\n  novalue\n").arguments()


# --------------------------------------------------------------------------- checksums
def test_checksum_table_pins_the_2_11_installer_as_nix_sen2cor_does() -> None:
    rows = {r.installer: r for r in read_checksums(CHECKSUMS)}
    assert rows["Sen2Cor-02.11.00-Linux64.run"].sha256 == NIX_SHA_211
    # nix-sen2cor's fetchurl hash is SRI base64 of the same digest
    assert base64.b64decode("jEqtMlSdGRz1flNJ3JeFv4B94HyT6hgtcRrIng0Ib3U=").hex() == NIX_SHA_211
    # no public source pins 2.9 or 2.10: no invented rows
    assert INSTALLERS["2.9"][0] not in rows and INSTALLERS["2.10"][0] not in rows
    assert "NO public source" in CHECKSUMS.read_text()


# --------------------------------------------------------------------------- the build command (golden)
@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    installer = tmp_path / "in" / "Sen2Cor-02.09.00-Linux64.run"
    installer.write_bytes(b"#!/bin/sh\n")
    esacci = tmp_path / "in" / "ESACCI-LC-L4-ALL-FOR-SEN2COR.zip"
    esacci.write_bytes(b"PK")
    ca = tmp_path / "in" / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    return {"tmp": tmp_path, "installer": installer, "esacci": esacci, "ca": ca, "out": tmp_path / "out"}


def _golden(plan: Any, tmp: Path) -> dict[str, Any]:
    def norm(s: str) -> str:
        return s.replace(str(tmp), "<tmp>").replace(str(REPO), "<repo>")

    return {
        "cwd": norm(str(plan.cwd)),
        "argv": [norm(a) for a in plan.argv],
        "sha256_origin": plan.sha256_origin,
        "notes": [norm(n) for n in plan.notes],
    }


def test_build_command_default_installer_is_trust_on_first_use(
    inputs: dict[str, Path], data_regression: Any
) -> None:
    plan = plan_build(
        BuildOptions(
            definition=DEF,
            out=inputs["out"] / "sen2cor-2.9.sif",
            esacci="https://example.org/ESACCI-LC-L4-ALL-FOR-SEN2COR.zip",
            lock=inputs["tmp"] / "none.lock",
        )
    )
    assert plan.sha256 is None and "TRUST ON FIRST USE" in plan.notes[0]
    data_regression.check(_golden(plan, inputs["tmp"]))


def test_build_command_local_files_are_bound_read_only(inputs: dict[str, Path], data_regression: Any) -> None:
    plan = plan_build(
        BuildOptions(
            definition=DEF,
            out=inputs["out"] / "img.sif",
            installer=str(inputs["installer"]),
            installer_sha256="AB" * 32,
            esacci=str(inputs["esacci"]),
            mirror="https://snapshot.debian.org/archive/debian/20250101T000000Z",
            apptainer=("bash", "sandbox.sh", "run", "--", "apptainer"),
            fakeroot=True,
            ca_bundle=inputs["ca"],
            use_lock=False,
        )
    )
    assert plan.sha256 == "ab" * 32 and plan.sha256_origin == "argument"
    assert plan.binds == [
        f"{inputs['tmp']}/in:{inputs['tmp']}/in:ro",
        f"{inputs['out']}/.img.sif.build-ca:{inputs['out']}/.img.sif.build-ca:ro",
    ]
    data_regression.check(_golden(plan, inputs["tmp"]))


def test_build_command_pins_from_table_then_lock(inputs: dict[str, Path]) -> None:
    common: dict[str, Any] = {"definition": DEF, "esacci": str(inputs["esacci"])}
    # 2.11: the table pins it; install-sen2cor.sh reads the table in the image itself
    plan = plan_build(BuildOptions(sen2cor_version="2.11", out=inputs["out"] / "a.sif", **common))
    assert (plan.sha256, plan.sha256_origin) == (NIX_SHA_211, "table")
    assert not any(a.startswith("SEN2COR_INSTALLER_SHA256") for a in plan.argv) and plan.notes == []
    # 2.9 with a lock entry for ESA's file name: the lock pins it
    lock = inputs["tmp"] / "sen2cor.lock"
    update_lock(lock, labels_for("Sen2Cor-02.09.00-Linux64.run", "cd" * 32))
    plan = plan_build(BuildOptions(out=inputs["out"] / "b.sif", lock=lock, **common))
    assert (plan.sha256, plan.sha256_origin) == ("cd" * 32, "lock")
    assert f"SEN2COR_INSTALLER_SHA256={'cd' * 32}" in plan.argv
    assert "SEN2COR_INSTALLER_SHA256_ORIGIN=lock" in plan.argv
    with pytest.raises(UsageError, match="contradicts the sha256 (cd)+ the lock recorded"):
        plan_build(BuildOptions(out=inputs["out"] / "b.sif", lock=lock, installer_sha256="ef" * 32, **common))
    # a stand-in's lock entry never pins another file name
    plan = plan_build(
        BuildOptions(out=inputs["out"] / "c.sif", lock=lock, installer=str(inputs["installer"]), **common)
    )
    assert plan.sha256_origin == "lock"  # the local file has ESA's name here
    other = inputs["tmp"] / "in" / "Sen2Cor-02.09.00-Linux64.STANDIN.run"
    shutil.copy(inputs["installer"], other)
    plan = plan_build(BuildOptions(out=inputs["out"] / "d.sif", lock=lock, installer=str(other), **common))
    assert plan.sha256_origin == "none"


def test_build_command_refuses_bad_input_before_building(inputs: dict[str, Path]) -> None:
    out = inputs["out"] / "x.sif"
    ok: dict[str, Any] = {"definition": DEF, "out": out, "esacci": str(inputs["esacci"]), "use_lock": False}
    with pytest.raises(UsageError, match="expected --esacci FILE_OR_URL"):
        plan_build(BuildOptions(definition=DEF, out=out))
    with pytest.raises(UsageError, match=r"found NOPE \(apptainer would stop with 'unused build args'\)"):
        plan_build(BuildOptions(**ok, build_args=(("NOPE", "1"),)))
    with pytest.raises(UsageError, match="contradicts the pin 8c4aad"):
        plan_build(BuildOptions(**{**ok, "sen2cor_version": "2.11"}, installer_sha256="11" * 32))
    with pytest.raises(UsageError, match="64 hex digits"):
        plan_build(BuildOptions(**ok, installer_sha256="abc"))
    with pytest.raises(InputError, match="found no file at"):
        plan_build(BuildOptions(**ok, installer=str(inputs["tmp"] / "missing.run")))
    with pytest.raises(ConfigError, match="expected a Sen2Cor version"):
        plan_build(BuildOptions(**ok, sen2cor_version="3.0"))
    out.write_bytes(b"")
    with pytest.raises(InputError, match="pass --force"):
        plan_build(BuildOptions(**ok))
    assert "--force" in plan_build(BuildOptions(**ok, force=True)).argv
    copy = inputs["tmp"] / "elsewhere" / "containers" / "sen2cor.def"
    copy.parent.mkdir(parents=True)
    shutil.copy(DEF, copy)
    with pytest.raises(InputError, match="inside an s2kit checkout"):
        plan_build(BuildOptions(**{**ok, "definition": copy}))


def test_build_refuses_an_installer_named_for_another_release(inputs: dict[str, Path]) -> None:
    """review2 (a): --sen2cor-version 2.12 with Sen2Cor-02.09.00-Linux64.run planned a 2.12-labelled
    image built from the 2.9 installer (install-sen2cor.sh refused it only inside the build)."""
    ok: dict[str, Any] = {
        "definition": DEF,
        "out": inputs["out"] / "x.sif",
        "esacci": str(inputs["esacci"]),
        "use_lock": False,
    }
    local = str(inputs["installer"])  # Sen2Cor-02.09.00-Linux64.run
    url = "https://mirror.example/sen2cor/Sen2Cor-02.09.00-Linux64.run"
    for installer in (local, url):
        with pytest.raises(UsageError, match=r"found Sen2Cor-02\.09\.00-Linux64\.run \(Sen2Cor 2\.9\); pass"):
            plan_build(BuildOptions(**ok, sen2cor_version="2.12", installer=installer))
    # the matching release, and a renamed stand-in without a release, still plan
    assert (
        plan_build(BuildOptions(**ok, sen2cor_version="2.9", installer=local)).installer_file_name
        == inputs["installer"].name
    )
    standin = inputs["tmp"] / "in" / "standin.run"
    shutil.copy(inputs["installer"], standin)
    assert (
        plan_build(BuildOptions(**ok, sen2cor_version="2.12", installer=str(standin))).installer_file_name
        == "standin.run"
    )
    # the CLI: one line, exit != 0, the next command named
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "s2kit",
            "container",
            "build",
            "--dry-run",
            "--def",
            str(DEF),
            "--sen2cor-version",
            "2.12",
            "--installer",
            local,
            "--esacci",
            str(inputs["esacci"]),
            "--out",
            str(inputs["out"] / "y.sif"),
            "--no-lock",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "pass --sen2cor-version 2.9" in result.stderr and result.stdout == ""


def test_cli_dry_run_prints_the_command_and_missing_apptainer_is_clear(
    inputs: dict[str, Path], s2kit_exe: str
) -> None:
    base = [
        s2kit_exe,
        "container",
        "build",
        "--esacci",
        str(inputs["esacci"]),
        "--no-lock",
        "--ca-bundle",
        "none",
    ]
    out = inputs["out"] / "img.sif"
    proc = subprocess.run([*base, "--out", str(out), "--dry-run"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    esacci_dir = inputs["esacci"].parent
    assert proc.stdout.startswith(
        f"cd {REPO} && apptainer build --bind {esacci_dir}:{esacci_dir}:ro --build-arg"
    )
    assert proc.stdout.rstrip().endswith(f"{out} containers/sen2cor.def")
    assert "TRUST ON FIRST USE" in proc.stderr
    proc = subprocess.run(
        [*base, "--out", str(out), "--apptainer", "/nonexistent/apptainer"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith(
        "s2kit: error: expected the apptainer command (/nonexistent/apptainer) on PATH"
    )
    assert "Apptainer >= 1.2" in proc.stderr


def test_default_ca_bundle_follows_the_hosts_own_settings(tmp_path: Path) -> None:
    pem = tmp_path / "ca.pem"
    pem.write_text("x")
    assert default_ca_bundle({"SSL_CERT_FILE": str(pem)}) == pem
    assert default_ca_bundle({"PIP_CERT": str(tmp_path / "missing.pem")}) is None
    assert default_ca_bundle({}) is None


# --------------------------------------------------------------------------- failure diagnosis
@pytest.mark.parametrize(
    ("lines", "expect"),
    [
        (
            [
                "I: Retrieving InRelease",
                "E: Failed getting release file http://127.0.0.1:9/debian/dists/bookworm/Release",
                "FATAL:   While performing build: conveyor failed to get: while debootstrapping: exit status 1",
            ],
            "the build has no network",
        ),
        (
            [
                'FATAL:   While performing build: conveyor failed to get: Get "https://index.docker.io/v2/": dial tcp: '
                "lookup index.docker.io: no such host"
            ],
            "the build has no network",
        ),
        (
            [
                "install-sen2cor.sh: error: installer sha256 mismatch for X.run: expected a (argument), found b; refusing",
                "FATAL:   While performing build: while running engine: while running %post section: exit status 1",
            ],
            "install-sen2cor.sh: installer sha256 mismatch for X.run",
        ),
        (["FATAL:   something else entirely"], "FATAL:   something else entirely"),
    ],
)
def test_build_failures_are_diagnosed(lines: list[str], expect: str) -> None:
    assert expect in diagnose_build_output(lines)


# --------------------------------------------------------------------------- lock + labels
def labels_for(name: str, digest: str) -> dict[str, str]:
    return {
        "org.s2kit.sen2cor.version": "2.9",
        "org.s2kit.sen2cor.installer": name,
        "org.s2kit.sen2cor.installer.sha256": digest,
        "org.s2kit.sen2cor.installer.pinned": "none (trust on first use)",
        "org.s2kit.sen2cor.installer.source": "https://step.esa.int/x",
    }


def test_lock_records_first_use_and_catches_a_changed_installer(tmp_path: Path) -> None:
    lock = tmp_path / "sen2cor.lock"
    assert read_lock(lock)["installers"] == {}
    update_lock(lock, labels_for("Sen2Cor-02.09.00-Linux64.run", "aa" * 32), tmp_path / "a.sif")
    update_lock(lock, labels_for("Sen2Cor-02.09.00-Linux64.run", "aa" * 32), tmp_path / "b.sif")
    entry = read_lock(lock)["installers"]["Sen2Cor-02.09.00-Linux64.run"]
    assert entry["sha256"] == "aa" * 32 and entry["last_image"].endswith("b.sif") and entry["first_recorded"]
    with pytest.raises(ImageBuildError, match="the lock pins sha256 a+, the image has b+"):
        update_lock(lock, labels_for("Sen2Cor-02.09.00-Linux64.run", "bb" * 32))
    with pytest.raises(InputError, match="labels in the image"):
        update_lock(lock, {})
    assert json.loads(lock.read_text())["s2kit_container_lock"] == 1


def test_labels_json_of_apptainer_inspect() -> None:
    text = '{"data": {"attributes": {"labels": {"org.s2kit.version": "0.1.0"}}}, "type": "container"}'
    assert parse_labels_json(text) == {"org.s2kit.version": "0.1.0"}


# --------------------------------------------------------------------------- check_binds
def _cfg(base: Path, runtime: str = "apptainer", **paths: Any) -> BatchConfig:
    (base / "l1c").mkdir(exist_ok=True)
    (base / "dem").mkdir(exist_ok=True)
    (base / "img.sif").write_bytes(b"")
    data = config_data(
        base, runtime=runtime, image=base / "img.sif", install_dir=base / "sen2cor", paths=paths
    )
    return BatchConfig.model_validate(data)


def test_check_binds_refuses_missing_read_only_sources_before_launch(tmp_path: Path) -> None:
    cfg = _cfg(
        tmp_path, dem_dir=str(tmp_path / "no-dem"), l1c_dirs=[str(tmp_path / "l1c"), str(tmp_path / "gone")]
    )
    with pytest.raises(ConfigError) as err:
        check_binds(cfg)
    msg = str(err.value)
    assert msg.startswith("expected every path apptainer exec binds to exist, found: ")
    assert f"paths.l1c_dirs[1] {tmp_path}/gone (read-only): does not exist" in msg
    assert f"paths.dem_dir {tmp_path}/no-dem (read-only): does not exist" in msg
    assert msg.endswith("(nothing launched)")
    assert not (tmp_path / "scratch").exists()  # nothing created when anything is missing


def test_check_binds_creates_writable_dirs_or_refuses_them(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    with pytest.raises(ConfigError, match=r"paths\.scratch_dir .* \(writable\): does not exist"):
        check_binds(cfg, create_writable=False)
    pairs = check_binds(cfg)
    assert (tmp_path / "scratch").is_dir() and (tmp_path / "l2a").is_dir() and (tmp_path / "run").is_dir()
    assert dict(pairs)[str(tmp_path / "img.sif")] == "ro"
    (tmp_path / "img.sif").unlink()
    (tmp_path / "img.sif").mkdir()
    with pytest.raises(ConfigError, match=r"sen2cor\.image .*img\.sif: not a file"):
        check_binds(cfg)
    native = tmp_path / "native"
    native.mkdir()
    assert check_binds(_cfg(native, runtime="native")) == []


# --------------------------------------------------------------------------- install-sen2cor.sh, natively
@pytest.fixture(scope="module")
def standins(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    need("makeself")
    d = tmp_path_factory.mktemp("standins")
    return {"dir": d, "installer": make_standin_installer(d), "esacci": make_standin_esacci(d)}


def install(tmp_path: Path, *args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    venv_bin = str(Path(sys.executable).parent)  # the s2kit command
    env = {**os.environ, "PATH": path or f"{venv_bin}:{os.environ['PATH']}", "TMPDIR": str(tmp_path)}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=300)


def test_install_script_installs_the_standin_natively(
    standins: dict[str, Any], tmp_path: Path, s2kit_exe: str
) -> None:
    inst, esacci = standins["installer"], standins["esacci"]
    labels = tmp_path / "labels"
    proc = install(
        tmp_path, "--installer", str(inst.path), "--esacci", str(esacci.path), "--prefix", str(tmp_path / "opt"),
        "--s2kit", s2kit_exe, "--labels", str(labels), "--link", str(tmp_path / "sen2cor"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    # no pin anywhere for a stand-in's name: trust on first use, said loudly, sha recorded
    assert "NO PINNED SHA256 for Sen2Cor-02.09.00-Linux64.STANDIN.run" in proc.stderr
    assert f"Installed sha256: {inst.sha256}" in proc.stderr
    target = tmp_path / "opt" / "Sen2Cor-02.09.00-Linux64"
    assert (tmp_path / "sen2cor").resolve() == target
    assert os.access(target / "bin" / "L2A_Process", os.X_OK)
    assert (target / "L2A_Bashrc").is_file()  # the stand-in's startup script ran in --target
    aux = target / "lib/python2.7/site-packages/sen2cor/aux_data"
    assert (aux / ".s2kit-esacci.json").is_file()
    assert sorted(p.name for p in (target / "s2kit-gipp").iterdir()) == [
        "L2A_CAL_AC_GIPP.xml", "L2A_CAL_SC_GIPP.xml", "L2A_GIPP.xml", "L2A_PB_GIPP.xml",
    ]  # fmt: skip
    lab = dict(line.split(" ", 1) for line in labels.read_text().splitlines())
    assert lab["org.s2kit.sen2cor.installer.sha256"] == inst.sha256
    assert lab["org.s2kit.sen2cor.installer.pinned"] == "none (trust on first use)"
    record = dict(line.split("=", 1) for line in (target / ".s2kit-install").read_text().splitlines())
    assert record["installer_sha256"] == inst.sha256 and record["sen2cor_version"] == "2.9"
    # nothing of the installer's default $HOME/sen2cor leaked into the real home or the install
    assert not (target / "sen2cor").exists()


def test_install_script_refuses_a_wrong_checksum_before_installing(
    standins: dict[str, Any], tmp_path: Path
) -> None:
    inst = standins["installer"]
    proc = install(
        tmp_path, "--installer", str(inst.path), "--sha256", "0" * 64, "--prefix", str(tmp_path / "opt"),
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f"install-sen2cor.sh: error: installer sha256 mismatch for {inst.path.name}: expected {'0' * 64} "
        f"(argument), found {inst.sha256}; refusing to install it"
    )
    assert not (tmp_path / "opt").exists()


def test_install_script_always_runs_makeself_check(standins: dict[str, Any], tmp_path: Path) -> None:
    bad = corrupt_copy(standins["installer"].path, tmp_path / "Sen2Cor-02.09.00-Linux64.CORRUPT.run")
    proc = install(
        tmp_path, "--installer", str(bad.path), "--sha256", bad.sha256, "--prefix", str(tmp_path / "opt")
    )
    assert proc.returncode == 1
    assert "integrity check (--check) failed" in proc.stderr
    assert not (tmp_path / "opt").exists()


def test_install_script_refuses_a_sha_that_contradicts_the_table(
    standins: dict[str, Any], tmp_path: Path
) -> None:
    table = tmp_path / "checksums.tsv"
    table.write_text(f"2.9\t{standins['installer'].path.name}\t{'ab' * 32}\ttest\n")
    proc = install(
        tmp_path, "--installer", str(standins["installer"].path), "--checksums", str(table),
        "--prefix", str(tmp_path / "opt"),
    )  # fmt: skip
    assert proc.returncode == 1
    assert f"expected {'ab' * 32} (table)" in proc.stderr  # the table's pin is enforced
    proc = install(
        tmp_path, "--installer", str(standins["installer"].path), "--checksums", str(table),
        "--sha256", standins["installer"].sha256, "--prefix", str(tmp_path / "opt"),
    )  # fmt: skip
    assert proc.returncode == 1 and "contradicts the pin" in proc.stderr


def test_install_script_needs_file_and_esacci_when_required(standins: dict[str, Any], tmp_path: Path) -> None:
    proc = install(tmp_path, "--installer", str(standins["installer"].path), "--require-esacci")
    assert proc.returncode == 1 and "expected the ESACCI-LC archive" in proc.stderr
    # a PATH with every tool but `file`
    nofile = tmp_path / "bin"
    nofile.mkdir()
    for folder in (str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"):
        for tool in Path(folder).iterdir():
            if tool.name != "file" and not (nofile / tool.name).exists():
                (nofile / tool.name).symlink_to(tool)
    proc = install(
        tmp_path, "--installer", str(standins["installer"].path), "--sha256", standins["installer"].sha256,
        "--prefix", str(tmp_path / "opt"), path=str(nofile),
    )  # fmt: skip
    assert proc.returncode == 1
    assert "the Sen2Cor installer needs the 'file' command" in proc.stderr


# --------------------------------------------------------------------------- Sen2Cor 2.12 (issue 18)
def test_212_installer_is_esas_02_12_03_run_on_trust_on_first_use(inputs: dict[str, Path]) -> None:
    """No public source pins Sen2Cor-02.12.03-Linux64.run: no invented row, TOFU, then the lock."""
    assert INSTALLERS["2.12"] == (
        "Sen2Cor-02.12.03-Linux64.run",
        "https://step.esa.int/thirdparties/sen2cor/2.12.0/Sen2Cor-02.12.03-Linux64.run",
    )
    assert INSTALLERS["2.12"][0] not in {r.installer for r in read_checksums(CHECKSUMS)}
    common: dict[str, Any] = {"definition": DEF, "esacci": str(inputs["esacci"]), "sen2cor_version": "2.12"}
    lock = inputs["tmp"] / "sen2cor.lock"
    plan = plan_build(BuildOptions(out=inputs["out"] / "a.sif", lock=lock, **common))
    assert (plan.sha256, plan.sha256_origin) == (None, "none") and "TRUST ON FIRST USE" in plan.notes[0]
    assert "SEN2COR_VERSION=2.12" in plan.argv
    update_lock(
        lock, {**labels_for("Sen2Cor-02.12.03-Linux64.run", "12" * 32), "org.s2kit.sen2cor.version": "2.12"}
    )
    plan = plan_build(BuildOptions(out=inputs["out"] / "b.sif", lock=lock, **common))
    assert (plan.sha256, plan.sha256_origin) == ("12" * 32, "lock")
    with pytest.raises(ImageBuildError, match="the lock pins sha256 (12)+, the image has (34)+"):
        update_lock(lock, labels_for("Sen2Cor-02.12.03-Linux64.run", "34" * 32))


def test_make_container_sen2cor_212_builds_the_212_image() -> None:
    make = need("make")
    proc = subprocess.run(
        [make, "-n", "container", "ESACCI=/x/E.zip", "SEN2COR=2.12", "S2KIT=s2kit"],
        capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if "container build" in x)
    assert '--out "containers/sen2cor-2.12.sif" --sen2cor-version 2.12' in line
    # the older spelling still works
    proc = subprocess.run(
        [make, "-n", "container", "ESACCI=/x/E.zip", "SEN2COR_VERSION=2.11", "S2KIT=s2kit"],
        capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
    )  # fmt: skip
    assert "--sen2cor-version 2.11" in proc.stdout


def test_install_script_refuses_an_unknown_version_in_one_line(tmp_path: Path) -> None:
    proc = install(tmp_path, "--version", "2.13")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "install-sen2cor.sh: error: expected --version 2.9, 2.10, 2.11 or 2.12, found '2.13'"
    ]


def test_install_script_installs_a_212_standin_whose_double_plays_212(
    standins: dict[str, Any], tmp_path: Path, s2kit_exe: str
) -> None:
    """A 2.12 stand-in (TEST DOUBLE inside, NOT Sen2Cor) through the same script as the image:
    TOFU, the 2.12 GIPPs, the record; the installed L2A_Process writes GIP_L2ACSC 21203."""
    from tests.support.safe_trees import build_l1c_tree

    inst = make_standin_installer(standins["dir"], "2.12")
    assert inst.path.name == "Sen2Cor-02.12.03-Linux64.STANDIN.run"
    proc = install(
        tmp_path, "--version", "2.12", "--installer", str(inst.path), "--esacci", str(standins["esacci"].path),
        "--prefix", str(tmp_path / "opt"), "--s2kit", s2kit_exe,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"NO PINNED SHA256 for {inst.path.name}" in proc.stderr
    target = tmp_path / "opt" / "Sen2Cor-02.12.03-Linux64"
    record = dict(line.split("=", 1) for line in (target / ".s2kit-install").read_text().splitlines())
    assert record["sen2cor_version"] == "2.12" and record["installer_sha256"] == inst.sha256
    pb = (target / "s2kit-gipp" / "L2A_PB_GIPP.xml").read_text()
    assert "<Idp_Sc_Version>02.12.03</Idp_Sc_Version>" in pb
    l1c = build_l1c_tree(tmp_path / "l1c", "05.09")
    out = tmp_path / "l2a"
    out.mkdir()
    home = tmp_path / "home"
    (home / "cfg").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("S2KIT_DOUBLE")}
    run = subprocess.run(
        [str(target / "bin" / "L2A_Process"), str(l1c), "--output_dir", str(out), "--cr_only"],
        capture_output=True, text=True, env={**env, "SEN2COR_HOME": str(home)}, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    (product,) = out.glob("S2*_MSIL2A_*.SAFE")
    mtd = (product / "MTD_MSIL2A.xml").read_text()
    assert 'type="GIP_L2ACSC" version="21203"' in mtd


def test_install_script_refuses_an_installer_of_another_release_than_version(
    standins: dict[str, Any], tmp_path: Path, s2kit_exe: str
) -> None:
    """`--version 2.12 --installer Sen2Cor-02.09.00-....run` installed 2.9 into
    Sen2Cor-02.12.03-Linux64 and recorded sen2cor_version=2.12 (and the image label): a wrong
    Sen2Cor version that doctor's label check then passed (review1)."""
    inst = standins["installer"]  # a 2.9 stand-in, named like ESA's 2.9 file
    proc = install(
        tmp_path, "--version", "2.12", "--installer", str(inst.path), "--prefix", str(tmp_path / "opt"),
        "--s2kit", s2kit_exe,
    )  # fmt: skip
    assert proc.returncode == 1 and not (tmp_path / "opt").exists()
    assert proc.stderr.strip().splitlines() == [
        "install-sen2cor.sh: error: expected the installer of Sen2Cor 2.12 (Sen2Cor-02.12.03-Linux64.run), "
        f"found {inst.path.name} (Sen2Cor 2.9); pass --version 2.9, or the 2.12 installer"
    ]


@pytest.mark.parametrize("option", ["--target", "--labels", "--gipp-dir", "--installer"])
def test_install_script_refuses_a_control_character_before_installing(
    standins: dict[str, Any], tmp_path: Path, s2kit_exe: str, option: str
) -> None:
    """`--target $'/opt/x\\nsen2cor_version=2.12'` ran the installer into that folder and only
    failed later at the GIPP render (a half install); in --labels or the record such a value
    adds a line of its own (review1)."""
    given = {"--target": str(tmp_path / "opt" / "x"), "--labels": str(tmp_path / "labels")}
    given["--gipp-dir"], given["--installer"] = str(tmp_path / "gipp"), str(standins["installer"].path)
    given[option] += "\nsen2cor_version=2.12"
    args = [x for pair in given.items() for x in pair]
    proc = install(tmp_path, *args, "--s2kit", s2kit_exe)
    assert proc.returncode == 1 and not (tmp_path / "opt").exists()
    assert proc.stderr.strip().splitlines() == [
        f"install-sen2cor.sh: error: {option}: expected no control characters, found $'{given[option]}'".replace(
            "\n", "\\n"
        )
    ]
