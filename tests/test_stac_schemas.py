"""The official STAC extension schemas s2kit ships: provenance (SOURCES.md sha256s) and use offline."""

from __future__ import annotations

import hashlib
import json
import re
import socket
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing.exceptions import Unretrievable

from s2kit.errors import InputError
from s2kit.stac import EXTENSION_SCHEMAS, make_item, validate_documents
from s2kit.stac.schemas import SCHEMA_ROOT, SHIPPED, _Offline
from tests.support.safe_trees import build_l2a_tree

SOURCES = SCHEMA_ROOT / "SOURCES.md"


def _sources_table() -> dict[str, dict[str, str]]:
    rows: dict[str, dict[str, str]] = {}
    for line in SOURCES.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0].endswith("schema.json"):
            rows[cells[0]] = dict(
                zip(["file", "repo", "tag", "commit", "path", "sha256"], cells, strict=True)
            )
    return rows


def test_every_shipped_schema_has_its_source_and_sha256() -> None:
    rows = _sources_table()
    files = sorted(str(p.relative_to(SCHEMA_ROOT)) for p in SCHEMA_ROOT.rglob("schema.json"))
    assert sorted(rows) == files == sorted(f"{s.name}/{s.tag}/schema.json" for s in SHIPPED)
    for rel, row in rows.items():
        data = (SCHEMA_ROOT / rel).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row["sha256"], rel
        name, tag = rel.split("/")[:2]
        assert (row["repo"], row["tag"], row["path"]) == (
            f"stac-extensions/{name}",
            tag,
            "json-schema/schema.json",
        )


@pytest.mark.parametrize("shipped", SHIPPED, ids=lambda s: f"{s.name}-{s.tag}")
def test_shipped_schema_is_the_one_its_uri_names(shipped: Any) -> None:
    doc = json.loads(shipped.path.read_text(encoding="utf-8"))
    assert doc["$id"].rstrip("#") == shipped.uri
    jsonschema.Draft7Validator.check_schema(doc)  # a well-formed draft-07 schema


def test_validation_never_retrieves_an_unknown_uri(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The registry's retrieve hook raises for any URI that is not a local file; no socket is opened."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    off = _Offline(None)
    registry = off.registry()
    with pytest.raises(Unretrievable) as caught:
        registry.get_or_retrieve("https://stac-extensions.github.io/file/v2.1.0/schema.json")
    assert isinstance(caught.value.__cause__, InputError) and "not available offline" in str(
        caught.value.__cause__
    )
    # a schema that $refs an unknown remote document: refused, never fetched
    item = make_item(build_l2a_tree(tmp_path, "07HFE")).to_dict(
        include_self_link=False, transform_hrefs=False
    )
    uri = "https://example.invalid/remote/schema.json"
    local = tmp_path / "schemas" / "example.invalid" / "remote" / "schema.json"
    local.parent.mkdir(parents=True)
    local.write_text(json.dumps({"$id": uri, "$ref": "https://example.invalid/other.json"}))
    item["stac_extensions"].append(uri)
    with pytest.raises(InputError, match=r"https://example.invalid/other.json is not available offline"):
        validate_documents([item], tmp_path / "schemas")


def test_every_declared_extension_is_shipped(tmp_path: Path) -> None:
    item = make_item(build_l2a_tree(tmp_path, "01KAB"))
    assert set(item.stac_extensions) <= set(EXTENSION_SCHEMAS)
    used = validate_documents([item.to_dict(include_self_link=False, transform_hrefs=False)])
    for uri in item.stac_extensions:
        assert re.match(r"official schema shipped with s2kit \(stac-extensions/", used[uri]), uri
