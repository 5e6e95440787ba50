"""Issue 17 item 2: commands users loop over take many paths in one process and stream.

``s2kit.inputs`` (paths, patterns the shell did not expand, ``-`` lists, NUL mode, hostile
entries) and the streaming of ``s2kit inspect`` / ``gipp check`` (``validate``: test_validate.py).
Before issue 17 ``inspect`` took exactly one path: every multi-input case here was a usage error.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from s2kit import inputs, plan
from s2kit.cli import app
from s2kit.inputs import InputItem, expand_glob, expand_inputs, read_list
from s2kit.safe import inspect_path, record_table
from tests.support import REPO
from tests.support.safe_trees import REAL_L2A_TILES, build_l2a_tree

GIPPS = REPO / "data" / "fixtures" / "gipp"
TILE_MTD = REPO / "data" / "fixtures" / "tile_mtd" / "L2A_T07HFE_A019029_20190212T192646_N02.12_MTD_TL.xml"


def _paths(items: Iterator[InputItem] | list[InputItem]) -> list[str]:
    return [i.path for i in items]


def _errors(items: list[InputItem]) -> dict[str, str]:
    return {i.path: i.error.message for i in items if i.error is not None}


@pytest.fixture
def store(hostile_dir: Path) -> Path:
    """A hostile-named store: two tiles' folders of (empty) product folders and a zip."""
    for rel in ("T07HFE/a.SAFE", "T07HFE/b.SAFE", "T33XWJ/c.SAFE", "T33XWJ/deep/er/d.SAFE", ".hidden/e.SAFE"):
        (hostile_dir / rel).mkdir(parents=True)
    (hostile_dir / "T33XWJ" / "z.SAFE.zip").write_bytes(b"PK")
    return hostile_dir


class _Trickle(io.RawIOBase):
    """A raw stream giving at most *chunk* bytes per read (a pipe)."""

    def __init__(self, data: bytes, chunk: int) -> None:
        self.data, self.chunk = data, chunk

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        n = min(len(b), self.chunk, len(self.data))
        b[:n], self.data = self.data[:n], self.data[n:]
        return n


# ----------------------------------------------------------------------------- s2kit.inputs
def test_paths_keep_their_order_and_a_repeated_path_is_read_once(store: Path) -> None:
    a, b = str(store / "T07HFE" / "a.SAFE"), str(store / "T07HFE" / "b.SAFE")
    again = str(store / "T07HFE" / ".." / "T07HFE" / "a.SAFE")
    assert _paths(expand_inputs([b, a, again, b])) == [b, a]


def test_quoted_pattern_is_expanded_sorted_without_hidden_names(store: Path) -> None:
    got = _paths(expand_inputs([f"{store}/*/*.SAFE", f"{store}/T33XWJ/?.SAFE.zip"]))
    assert got == [f"{store}/T07HFE/a.SAFE", f"{store}/T07HFE/b.SAFE", f"{store}/T33XWJ/c.SAFE"] + [
        f"{store}/T33XWJ/z.SAFE.zip"
    ]
    assert expand_glob(f"{store}/.*/*.SAFE") == [f"{store}/.hidden/e.SAFE"]  # a '.' pattern: hidden
    assert expand_glob(f"{store}/T07HFE/[ab].SAFE") == [f"{store}/T07HFE/a.SAFE", f"{store}/T07HFE/b.SAFE"]


def test_double_star_matches_any_depth(store: Path) -> None:
    assert expand_glob(f"{store}/**/*.SAFE") == [
        f"{store}/T07HFE/a.SAFE",
        f"{store}/T07HFE/b.SAFE",
        f"{store}/T33XWJ/c.SAFE",
        f"{store}/T33XWJ/deep/er/d.SAFE",
    ]


def test_double_star_never_walks_through_a_symlink_loop(store: Path) -> None:
    """glob.glob('**') follows symlinked folders: two links to '..' make it explode (2^40 paths)."""
    for name in ("up", "again"):
        (store / "T33XWJ" / "deep" / name).symlink_to("..")
    got = expand_glob(f"{store}/**/*.SAFE")
    assert got == sorted(set(got)) and len(got) == 4
    # one level of pattern through the link is as the shell does it: finite by the pattern
    assert expand_glob(f"{store}/T33XWJ/deep/up/*.SAFE") == [f"{store}/T33XWJ/deep/up/c.SAFE"]


def test_pattern_matching_nothing_is_one_error_item_and_the_stream_goes_on(store: Path) -> None:
    a = str(store / "T07HFE" / "a.SAFE")
    items = list(expand_inputs([f"{store}/*/nothing*.SAFE", a]))
    assert _paths(items) == [f"{store}/*/nothing*.SAFE", a]
    assert _errors(items) == {
        f"{store}/*/nothing*.SAFE": "expected at least one path matching the pattern, found none"
    }


def test_existing_name_with_pattern_characters_is_that_path(tmp_path: Path) -> None:
    odd = tmp_path / "x[1]*.SAFE"
    odd.mkdir()
    (tmp_path / "x1.SAFE").mkdir()  # what the name would match as a pattern
    items = list(expand_inputs([str(odd)]))
    assert _paths(items) == [str(odd)] and items[0].error is None


def test_dash_reads_a_newline_list_as_it_arrives(store: Path) -> None:
    a, c = store / "T07HFE" / "a.SAFE", store / "T33XWJ" / "c.SAFE"

    class Slow(io.RawIOBase):
        """Gives the list one line per read; fails if read again before the first item is used."""

        def __init__(self) -> None:
            self.lines = [os.fsencode(f"{a}\n"), b"\n", os.fsencode(f"{c}\n")]
            self.reads = 0

        def readable(self) -> bool:
            return True

        def read1(self, n: int = -1) -> bytes:
            self.reads += 1
            return self.lines.pop(0) if self.lines else b""

    stream = Slow()
    it = expand_inputs(["-"], stdin=stream)  # type: ignore[arg-type]
    assert next(it).path == str(a) and stream.reads == 1  # streamed: not read to the end first
    assert _paths(it) == [str(c)]  # the empty line is skipped


def test_list_entries_are_literal_paths_never_patterns(store: Path) -> None:
    pattern = f"{store}/*/*.SAFE"
    items = list(expand_inputs(["-"], stdin=io.BytesIO(os.fsencode(pattern + "\n"))))
    assert _paths(items) == [pattern]
    assert _errors(items) == {pattern: "expected a file or folder, found nothing there"}


def test_a_path_with_a_newline_comes_through_nul_mode_only(hostile_dir: Path) -> None:
    evil = hostile_dir / "evil\nname.SAFE"
    evil.mkdir()
    data = os.fsencode(f"{evil}\0")
    items = list(expand_inputs(["-"], stdin=io.BytesIO(data), null=True))
    assert _paths(items) == [str(evil)] and items[0].error is None
    split = list(expand_inputs(["-"], stdin=io.BytesIO(data)))  # newline mode: two wrong paths
    assert len(split) == 2 and all(i.error is not None for i in split)


def test_undecodable_name_round_trips_through_a_list(tmp_path: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/caf\xe9.SAFE"
    os.mkdir(raw)
    (item,) = expand_inputs(["-"], stdin=io.BytesIO(raw + b"\n"))
    assert item.error is None and os.fsencode(item.path) == raw


def test_over_long_list_entry_is_one_error_and_reading_goes_on(tmp_path: Path) -> None:
    product = tmp_path / "a.SAFE"
    product.mkdir()
    long = b"x" * (3 * inputs.MAX_ENTRY_BYTES)
    data = long + b"\n" + os.fsencode(f"{product}\n") + long  # over-long within a chunk, and at the end
    for chunk in (1024, 1 << 20):  # the entry split across reads, or whole in one read
        items = list(read_list(io.BufferedReader(_Trickle(data, chunk))))
        assert [i.error is not None for i in items] == [True, False, True] and items[1] == InputItem(
            str(product)
        )
        assert "expected a list entry of at most 4096 bytes, found a longer one" in str(items[0].error)


def test_hostile_entries_are_one_error_each_and_nothing_blocks(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.SAFE.zip")
    (tmp_path / "loop.SAFE").symlink_to("loop.SAFE")
    (tmp_path / "dangling.SAFE").symlink_to("gone.SAFE")
    (tmp_path / "folder.zip").mkdir()
    (tmp_path / "file.SAFE").write_bytes(b"")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock.zip"))
    ok = tmp_path / "manifest.safe"  # a metadata file named *.safe is fine
    ok.write_text("<x/>")
    names = ["fifo.SAFE.zip", "loop.SAFE", "dangling.SAFE", "folder.zip", "file.SAFE", "sock.zip", "nope"]
    try:
        items = list(expand_inputs([str(tmp_path / n) for n in names] + [str(ok), ""]))
    finally:
        sock.close()
    found = {Path(p).name if p else "": e for p, e in _errors(items).items()}
    assert found == {
        "fifo.SAFE.zip": "expected a file or folder, found a FIFO",
        "loop.SAFE": "expected a file or folder, found a symlink loop",
        "dangling.SAFE": "expected a file or folder, found a dangling symlink",
        "folder.zip": "expected a zip file, found a folder",
        "file.SAFE": "expected a .SAFE folder, found a regular file",
        "sock.zip": "expected a file or folder, found a socket",
        "nope": "expected a file or folder, found nothing there",
        "": "expected a path, found an empty string (not the current directory)",
    }
    assert len(items) == len(names) + 2 and items[-2] == InputItem(str(ok))


def test_planner_and_inputs_say_what_is_there_with_one_function() -> None:
    assert plan._what_is_there is inputs.what_is_there and plan._kind_of_mode is inputs.kind_of_mode


# ----------------------------------------------------------------------------- s2kit inspect
@pytest.fixture
def products(hostile_dir: Path) -> list[Path]:
    return [build_l2a_tree(hostile_dir, tile) for tile in REAL_L2A_TILES]


def _lines(stdout: bytes | str) -> list[dict[str, object]]:
    text = stdout.decode("utf-8") if isinstance(stdout, bytes) else stdout
    assert text.endswith("\n")
    return [json.loads(line) for line in text.split("\n")[:-1]]


def test_inspect_of_several_paths_streams_one_json_line_each(products: list[Path]) -> None:
    shuffled = [products[2], products[0], products[3], products[1]]
    res = CliRunner().invoke(app, ["inspect", "--json", *map(str, shuffled)])
    assert res.exit_code == 0, res.output
    records = _lines(res.stdout)
    assert records == [{**inspect_path(p)} for p in shuffled]  # same keys as the single object, in order
    assert [r["path"] for r in records] == [str(p) for p in shuffled]


def test_inspect_one_path_output_is_unchanged(products: list[Path]) -> None:
    runner = CliRunner()
    one = runner.invoke(app, ["inspect", "--json", str(products[0])])
    assert (
        one.exit_code == 0
        and one.stdout == json.dumps(inspect_path(products[0]), indent=2, ensure_ascii=False) + "\n"
    )
    text = runner.invoke(app, ["inspect", str(TILE_MTD)])
    assert text.exit_code == 0 and text.stdout == record_table(inspect_path(TILE_MTD)) + "\n"
    forced = runner.invoke(app, ["inspect", "--jsonl", str(products[0])])  # JSON Lines for one path
    assert _lines(forced.stdout) == [inspect_path(products[0])]


def test_inspect_missing_entry_mid_stream_is_an_error_record_and_exit_1(products: list[Path]) -> None:
    missing = products[0].parent / "gone.SAFE"
    res = CliRunner().invoke(app, ["inspect", "--json", str(products[0]), str(missing), str(products[1])])
    assert res.exit_code == 1
    first, error, last = _lines(res.stdout)
    assert error == {
        "path": str(missing),
        "error": f"{missing}: expected a file or folder, found nothing there",
    }
    assert (first["path"], last["path"]) == (str(products[0]), str(products[1]))


def test_inspect_text_mode_prints_blocks_and_errors_on_stderr(products: list[Path]) -> None:
    res = CliRunner().invoke(app, ["inspect", str(products[0]), "nope.SAFE", str(TILE_MTD)])
    assert res.exit_code == 1
    blocks = res.stdout.split("\n\n")
    assert len(blocks) == 2 and blocks[0].startswith("kind ") and "L2A_TILE" in blocks[1]
    assert res.stderr == "s2kit: error: nope.SAFE: expected a file or folder, found nothing there\n"


def test_inspect_usage_errors_exit_2(products: list[Path]) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["inspect", "--null", str(products[0]), str(products[1])])
    assert res.exit_code == 2 and "expected --null with '-'" in res.stderr
    assert runner.invoke(app, ["inspect"]).exit_code == 2


def test_inspect_reads_a_list_on_stdin_and_a_pattern(s2kit_exe: str, products: list[Path]) -> None:
    folder = products[0].parent
    listing = "".join(f"{p}\n" for p in products[:2]) + f"{folder}/missing.SAFE\n"
    res = subprocess.run(
        [s2kit_exe, "inspect", "--json", "-", f"{folder}/*_T33*.SAFE"],
        input=listing.encode(),
        capture_output=True,
        timeout=60,
    )
    assert res.returncode == 1 and res.stderr == b""
    got = [r["path"] for r in _lines(res.stdout)]
    t33 = sorted(str(p) for p in products if "_T33" in p.name)
    expect = [str(products[0]), str(products[1]), f"{folder}/missing.SAFE"]
    assert got == expect + [p for p in t33 if p not in expect]  # de-duplicated, in order


def test_inspect_nul_list_with_hostile_names_stays_one_line_per_record(
    s2kit_exe: str, tmp_path: Path
) -> None:
    names = ["evil\nname.SAFE", "sep\u2028line.SAFE", "nel\x85.SAFE"]
    paths = [build_l2a_tree(tmp_path, "07HFE", name=n) for n in names]
    raw = os.fsencode(tmp_path) + b"/caf\xe9.SAFE"
    os.rename(build_l2a_tree(tmp_path, "33XWJ", name="plain.SAFE"), raw)
    data = b"".join(os.fsencode(p) + b"\0" for p in paths) + raw + b"\0"
    res = subprocess.run(
        [s2kit_exe, "inspect", "--json", "-0", "-"], input=data, capture_output=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.decode("utf-8").splitlines()  # splitlines breaks at \u2028 and \x85 too
    assert len(lines) == 4
    assert [json.loads(line)["path"] for line in lines[:3]] == [str(p) for p in paths]
    assert json.loads(lines[3])["path"] == str(tmp_path) + "/caf\\udce9.SAFE"  # display_path's form


def test_inspect_ends_quietly_when_the_reader_closes_the_pipe(s2kit_exe: str, products: list[Path]) -> None:
    many = [str(TILE_MTD)] * 1 + [str(p) for p in products] * 1
    proc = subprocess.Popen(
        [s2kit_exe, "inspect", "--json", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write("".join(f"{p}\n" for p in many).encode())
    proc.stdin.flush()
    json.loads(proc.stdout.readline())  # the first record, flushed before the list has ended
    proc.stdout.close()  # the reader goes away (| head -1)
    proc.stdin.write(b"".join(os.fsencode(f"{p}\n") for p in [TILE_MTD.parent] * 3))
    proc.stdin.close()
    assert proc.wait(timeout=60) == 141
    assert proc.stderr.read() == b""
    proc.stderr.close()


# ----------------------------------------------------------------------------- s2kit gipp check
def test_gipp_check_jsonl_streams_and_a_bad_file_does_not_stop_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_bytes(b"nope")
    good = sorted(str(p) for p in GIPPS.glob("*pristine*.xml"))[:2]
    res = CliRunner().invoke(app, ["gipp", "check", "--jsonl", good[0], str(bad), good[1]])
    assert res.exit_code == 1
    first, error, second, summary = _lines(res.stdout)
    assert (first["file"], second["file"]) == tuple(good) and first["kind"] == "L2A_GIPP"
    assert error["file"] == str(bad) and "expected well-formed XML" in str(error["error"])
    errors, warnings = (sum(int(r[k]) for r in (first, second)) for k in ("errors", "warnings"))  # type: ignore[call-overload]
    assert summary["summary"] == {
        "files": 2, "errors": errors, "warnings": warnings, "strict": False, "unreadable": 1
    }  # fmt: skip
    assert summary["failed"] is True


def test_gipp_check_takes_a_pattern(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["gipp", "check", "--json", f"{GIPPS}/*pristine*.xml"])
    doc = json.loads(res.stdout)
    assert doc["summary"]["files"] == len(list(GIPPS.glob("*pristine*.xml"))) > 1


# --------------------------------------------------------------------------- hostile review (review1)
@pytest.mark.parametrize("null", [False, True])
def test_empty_stdin_list_is_an_error_not_an_empty_success(null: bool) -> None:
    """An empty '-' list (find matched nothing, a typo in its folder) is one error, like an
    empty pattern; before, it gave no item at all: validate said "valid" and exit 0."""
    items = list(expand_inputs(["-"], stdin=io.BytesIO(b"\n\n" if not null else b"\0"), null=null))
    assert _paths(items) == ["-"]
    assert "expected at least one path in the list on stdin" in _errors(items)["-"]


@pytest.mark.parametrize(
    ("command", "key"), [(["inspect", "--json"], "path"), (["gipp", "check", "--jsonl"], "file")]
)
def test_empty_stdin_list_exits_1_with_an_error_record(command: list[str], key: str) -> None:
    res = CliRunner().invoke(app, [*command, "-"], input=b"")
    assert res.exit_code == 1
    first = json.loads(res.stdout.splitlines()[0])
    assert first[key] == "-" and "found none" in first["error"]


def test_two_over_long_entries_with_one_prefix_are_two_errors_not_one(tmp_path: Path) -> None:
    """Error items were de-duplicated by their shown path (the first 60 bytes + '…'): a second
    over-long entry with the same start vanished from the stream and the counts (review1)."""
    product = tmp_path / "a.SAFE"
    product.mkdir()
    first = b"/store/" + b"x" * (2 * inputs.MAX_ENTRY_BYTES) + b"/1.SAFE"
    second = b"/store/" + b"x" * (2 * inputs.MAX_ENTRY_BYTES) + b"/2.SAFE"
    data = first + b"\n" + second + b"\n" + os.fsencode(f"{product}\n")
    items = list(expand_inputs(["-"], stdin=io.BytesIO(data)))
    assert [i.error is not None for i in items] == [True, True, False]
    assert items[2].path == str(product)


@pytest.mark.parametrize(
    "args",
    [
        ["inspect", "--json", str(TILE_MTD)],
        ["inspect", str(TILE_MTD)],
        ["gipp", "check", "--json", "GIPP"],
        ["gipp", "check", "GIPP"],
        ["gipp", "diff", str(REPO / "s2kit/templates/gipp/2.12/L2A_GIPP.xml")],
        ["validate", "--json", "-", "PRODUCT"],
    ],
)
def test_single_document_output_to_a_closed_pipe_exits_141_not_1(
    s2kit_exe: str, tmp_path: Path, args: list[str]
) -> None:
    """The one-document outputs went through click's echo: a reader gone (`| head`, `| true`)
    gave exit 1, the code of a failed check, for clean inputs; 141 is what the docs say (review1)."""
    from s2kit.gipp import write_gipp_dir

    given = {
        "PRODUCT": str(build_l2a_tree(tmp_path, "33TVM")),  # valid
        "GIPP": str(write_gipp_dir(tmp_path / "cfg", sen2cor="2.12", threads=1).paths[1]),  # clean PB GIPP
    }
    argv = [s2kit_exe, *(given.get(a, a) for a in args)]
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte
    try:
        res = subprocess.run(argv, stdout=write_end, stderr=subprocess.PIPE, timeout=60)
    finally:
        os.close(write_end)
    assert (res.returncode, res.stderr) == (141, b"")


@pytest.mark.parametrize(
    "args", [["inspect", "--json", "ONE"], ["inspect", "--json", "ONE", "ONE2"], ["inspect", "ONE"]]
)
def test_output_to_a_stdout_that_cannot_encode_the_name_is_utf8_not_a_crash(
    s2kit_exe: str, tmp_path: Path, args: list[str]
) -> None:
    """With PYTHONIOENCODING=ascii (or a Latin-1 locale) a product under a non-ASCII folder
    ended in "internal error: UnicodeEncodeError", exit 70, for several inputs (review1)."""
    folder = tmp_path / "日本 store"
    folder.mkdir()
    one = folder / "a_MTD_TL.xml"
    one.write_bytes(TILE_MTD.read_bytes())
    two = folder / "b_MTD_TL.xml"
    two.write_bytes(TILE_MTD.read_bytes())
    argv = [s2kit_exe, *({"ONE": str(one), "ONE2": str(two)}.get(a, a) for a in args)]
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    res = subprocess.run(argv, capture_output=True, env=env, timeout=60)
    assert (res.returncode, res.stderr) == (0, b"")
    assert str(one) in res.stdout.decode("utf-8")
