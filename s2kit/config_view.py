"""The run's config snapshot as the worker reads it: without pydantic (issue 17 item 4).

``s2kit plan`` validates the config (pydantic, :mod:`s2kit.config`) and writes ``config.json``.
Beside it, it writes ``config.view.json`` (:func:`write_config_view`): the same values plus what
JSON alone cannot say, all taken from the validated model at plan time --

* which values are paths (``Path``) and dates;
* the derived values, every property of the models (``scheduler.walltime_minutes``,
  ``scheduler.memory_per_task_mb``, ...);
* the effective Sen2Cor settings per version, ``BatchConfig.sen2cor_for(version)`` (issue 18:
  a route entry merged over ``[sen2cor]``), for ``None`` and every supported version.

So nothing of the schema is copied by hand: a key, a route entry or a property added to the
models reaches the worker with the next plan. :func:`load_snapshot` (the worker) uses the view
only when it describes exactly the ``config.json`` on disk -- its plain values equal the
snapshot's, written by this s2kit version in this format; otherwise (a run planned by an older
s2kit, a torn, wrong-shaped or hand-edited snapshot or view) it validates ``config.json`` with
pydantic as before (:meth:`s2kit.runs.RunDir.config`), with the same one-line errors.

The view is read-only and has the attribute access the worker uses (``cfg.paths.l2a_dir`` is a
``Path``, ``cfg.sen2cor.version``, ``cfg.scheduler.walltime_minutes``, ``cfg.sen2cor_for(v)``);
a key the snapshot lacks raises :class:`SnapshotKeyMissing` (a ConfigError and an
AttributeError). Standard library only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from . import __version__
from .errors import ConfigError, S2kitError

if TYPE_CHECKING:  # pydantic: never imported here
    from .config import BatchConfig
    from .runs import RunDir

__all__ = [
    "VIEW_FORMAT",
    "ConfigView",
    "SnapshotKeyMissing",
    "describe",
    "load_snapshot",
    "view_of",
    "write_config_view",
]

VIEW_FORMAT = "s2kit-config-view/1"
VIEW_NAME = "config.view.json"
MAX_VIEW_BYTES = 4 * 1024 * 1024  # a few kB; read capped all the same


class SnapshotKeyMissing(ConfigError, AttributeError):
    """The worker asked for a key the config snapshot does not have (planned by another s2kit)."""


# --------------------------------------------------------------------------- plan side: describe
def _is_model(value: Any) -> bool:
    return isinstance(getattr(type(value), "model_fields", None), dict)


def _properties(cls: type) -> list[str]:
    """Names of the properties s2kit's models define (not pydantic's own)."""
    from functools import cached_property

    names: list[str] = []
    for klass in cls.__mro__:
        if not klass.__module__.startswith("s2kit."):
            continue
        for name, attr in vars(klass).items():
            if isinstance(attr, (property, cached_property)) and name not in names:
                names.append(name)
    return sorted(names)


def _encode(value: Any) -> Any:
    if _is_model(value):
        cls = type(value)
        return {
            "$model": cls.__name__,
            "fields": {name: _encode(getattr(value, name)) for name in cls.model_fields},
            "props": {name: _encode(getattr(value, name)) for name in _properties(cls)},
        }
    if isinstance(value, PurePath):
        return {"$path": str(value)}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {"$map": {str(k): _encode(v) for k, v in value.items()}}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"config view: no JSON form for {type(value).__name__}")


def _sen2cor_table(cfg: BatchConfig) -> list[list[Any]] | None:
    """``[version, view or error]`` for None and every supported version; None: no sen2cor_for."""
    method = getattr(cfg, "sen2cor_for", None)
    if method is None:
        return None
    from .versions import SUPPORTED_VERSIONS

    table: list[list[Any]] = []
    for version in (None, *SUPPORTED_VERSIONS):
        try:
            effective = method(version)
        except S2kitError as exc:  # a version the config does not route: the same refusal later
            path = str(exc.path) if exc.path is not None else None
            table.append([version, {"$error": [type(exc).__name__, exc.message, path]}])
        else:
            table.append([version, _encode(effective)])
    return table


def describe(cfg: BatchConfig) -> dict[str, Any]:
    """The view document of a validated config (what :func:`write_config_view` writes)."""
    doc: dict[str, Any] = {
        "format": VIEW_FORMAT,
        "s2kit_version": __version__,
        "config": _encode(cfg),
        "sen2cor_for": _sen2cor_table(cfg),
    }
    doc["digest"] = _digest(doc)
    return doc


def _digest(doc: dict[str, Any]) -> str:
    """sha256 of the view's content (canonical JSON). The plain config values are checked against
    config.json; the derived ones (properties, the ``sen2cor_for`` table: which Sen2Cor install,
    image and DEM each version runs with) only by this: a hand-edited or damaged view no longer
    matches it, and the worker validates config.json instead. It catches edits and damage, not a
    forger (who can write the run dir can write its job scripts too)."""
    from hashlib import sha256

    body = {k: doc.get(k) for k in ("format", "s2kit_version", "config", "sen2cor_for")}
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def view_file(rd: RunDir) -> Path:
    return rd.path / VIEW_NAME


def write_config_view(rd: RunDir, cfg: BatchConfig) -> None:
    """Write ``config.view.json`` for the ``config.json`` plan has just written from *cfg*.

    The view only saves the worker time: a config it cannot describe (a value with no JSON form,
    a model method that fails) leaves no view, and the worker validates the snapshot itself. A
    run dir that cannot be written is one line (:func:`s2kit.runs.writing`), as for config.json.
    """
    from .fsutil import atomic_write_text
    from .runs import writing

    target = view_file(rd)
    try:
        text = json.dumps(describe(cfg), indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    except Exception:  # never fails a plan: the worker falls back to validating config.json
        text = None
    with writing(target):
        if text is None:
            if os.path.lexists(target):
                os.unlink(target)
            return
        atomic_write_text(target, text)


# --------------------------------------------------------------------------- worker side: view
def _plain(node: Any) -> Any:
    """The JSON value ``model_dump(mode="json")`` gives for an encoded *node*."""
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, dict):
        if "$model" in node:
            return {k: _plain(v) for k, v in node["fields"].items()}
        if "$path" in node:
            return node["$path"]
        if "$date" in node:
            return node["$date"]
        if "$map" in node:
            return {k: _plain(v) for k, v in node["$map"].items()}
        raise ValueError(f"unknown node {sorted(node)}")
    return node


def _decode(node: Any, where: str) -> Any:
    if isinstance(node, list):
        return [_decode(v, f"{where}[{i}]") for i, v in enumerate(node)]
    if isinstance(node, dict):
        if "$model" in node:
            return ConfigView(
                node["$model"],
                {k: _decode(v, f"{where}.{k}".lstrip(".")) for k, v in node["fields"].items()},
                {k: _decode(v, f"{where}.{k}".lstrip(".")) for k, v in node["props"].items()},
                where,
            )
        if "$path" in node:
            return Path(node["$path"])
        if "$date" in node:
            return date.fromisoformat(node["$date"])
        if "$map" in node:
            return {k: _decode(v, f"{where}.{k}") for k, v in node["$map"].items()}
        raise ValueError(f"unknown node {sorted(node)}")
    return node


class ConfigView:
    """A read-only view of one validated config model (``BatchConfig``, ``PathsConfig`` ...)."""

    __slots__ = ("_model", "_fields", "_props", "_where", "_sen2cor")

    def __init__(
        self,
        model: str,
        fields: dict[str, Any],
        props: dict[str, Any],
        where: str = "",
        sen2cor: list[list[Any]] | None = None,
    ) -> None:
        object.__setattr__(self, "_model", model)
        object.__setattr__(self, "_fields", fields)
        object.__setattr__(self, "_props", props)
        object.__setattr__(self, "_where", where)
        object.__setattr__(self, "_sen2cor", sen2cor)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # not a key (pydantic fields never start with '_'); no recursion
            raise AttributeError(name)
        if name in self._fields:
            return self._fields[name]
        if name in self._props:
            return self._props[name]
        if name == "sen2cor_for" and self._sen2cor is not None:
            return self._sen2cor_for
        key = f"{self._where}.{name}".lstrip(".")
        raise SnapshotKeyMissing(
            f"expected key '{key}' in the config snapshot, found none (planned by another s2kit version?); "
            "run `s2kit plan` again (it rewrites plan.jsonl and config.json)"
        )

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"the config snapshot is read-only (set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"the config snapshot is read-only (delete {name!r})")

    def __dir__(self) -> list[str]:
        return sorted({*self._fields, *self._props})

    def __iter__(self) -> Iterator[tuple[str, Any]]:  # like a pydantic model: (field, value) pairs
        return iter(self._fields.items())

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._fields.items())
        return f"{self._model}View({inner})"

    def to_json_dict(self) -> dict[str, Any]:
        """The values as ``config.json`` holds them (``model_dump(mode="json")``)."""
        out: dict[str, Any] = json.loads(json.dumps(self._json(), default=str))
        return out

    def _json(self) -> dict[str, Any]:
        def plain(v: Any) -> Any:
            if isinstance(v, ConfigView):
                return v._json()
            if isinstance(v, list):
                return [plain(x) for x in v]
            if isinstance(v, dict):
                return {k: plain(x) for k, x in v.items()}
            if isinstance(v, (PurePath, date)):
                return str(v) if isinstance(v, PurePath) else v.isoformat()
            return v

        return {k: plain(v) for k, v in self._fields.items()}

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ConfigView):
            return self._json() == other._json()
        dump = getattr(other, "model_dump", None)
        if callable(dump):  # a validated model: equal when its JSON values are
            theirs: Any = json.loads(json.dumps(dump(mode="json")))
            return bool(self.to_json_dict() == theirs)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def _sen2cor_for(self, version: str | None) -> Any:
        """``BatchConfig.sen2cor_for(version)`` as plan computed it."""
        assert self._sen2cor is not None
        for label, node in self._sen2cor:
            if label == version:
                if isinstance(node, dict) and "$error" in node:
                    from . import errors

                    kind, message, path = node["$error"]
                    cls = getattr(errors, kind, None)
                    cls = cls if isinstance(cls, type) and issubclass(cls, S2kitError) else ConfigError
                    raise cls(message, path)
                return _decode(node, "sen2cor")
        raise ConfigError(
            f"expected a Sen2Cor version of the config snapshot "
            f"({', '.join(str(v) for v, _ in self._sen2cor if v is not None)}), found {version!r}"
        )


# --------------------------------------------------------------------------- worker side: load
def _read_view(rd: RunDir) -> dict[str, Any] | None:
    try:
        with open(view_file(rd), "rb") as fh:
            raw = fh.read(MAX_VIEW_BYTES + 1)
        if len(raw) > MAX_VIEW_BYTES:
            return None
        doc = json.loads(raw)
    except (OSError, ValueError, RecursionError):  # RecursionError: "[[[[..." nested past the stack
        return None
    return doc if isinstance(doc, dict) else None


def view_of(data: dict[str, Any], doc: dict[str, Any] | None) -> ConfigView | None:
    """The view *doc* describes, when it describes exactly the snapshot *data*; else None."""
    if doc is None or doc.get("format") != VIEW_FORMAT or doc.get("s2kit_version") != __version__:
        return None
    try:
        if doc.get("digest") != _digest(doc):  # derived values edited or damaged since plan
            return None
        node = doc["config"]
        if not isinstance(node, dict) or "$model" not in node or _plain(node) != data:
            return None
        sen2cor = doc.get("sen2cor_for")
        if sen2cor is not None and not (
            isinstance(sen2cor, list) and all(isinstance(r, list) and len(r) == 2 for r in sen2cor)
        ):
            return None
        root = _decode(node, "")
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    if not isinstance(root, ConfigView):
        return None
    return ConfigView(root._model, root._fields, root._props, "", sen2cor)


def load_snapshot(rd: RunDir) -> BatchConfig:
    """The plan's config snapshot for a worker: the view when it matches ``config.json``,
    else the snapshot validated with pydantic (:meth:`~s2kit.runs.RunDir.config`).

    Typed as :class:`~s2kit.config.BatchConfig`: the view has every attribute the worker reads.
    """
    data = rd.config_data()  # today's one-line errors: missing, unreadable, not a JSON object
    view = view_of(data, _read_view(rd))
    if view is not None:
        return view  # type: ignore[return-value]
    return rd.config()
