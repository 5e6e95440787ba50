"""PlanEntry / SceneState / JobRecord ``to_json`` without ``dataclasses.asdict`` (issue 17 item 7):
the bytes written must stay exactly those of the old serialisation."""

from __future__ import annotations

import dataclasses
import json
import random
from typing import Any

from s2kit.runs import JobRecord, PlanEntry, SceneState

TEXTS = [
    "S2A_MSIL1C_20210602T160829_N0301_R140_T17SQV_20210602T190829",
    "/data/dir with spaces 'quote' \"dq\" $HOME ünïcødé/x.SAFE",
    "$(touch /tmp/pwned)",
    "-leading-dash",
    "line\nbreak\ttab\x00nul\x7f",
    "emoji 🛰️ and \u2028 separators \u2029",
    "",
]


def old_to_json(record: Any, **kw: Any) -> str:
    """What every to_json wrote before (asdict, then json.dumps)."""
    return json.dumps(dataclasses.asdict(record), ensure_ascii=False, sort_keys=True, **kw)


def test_to_json_is_byte_identical_to_the_asdict_serialisation() -> None:
    rng = random.Random(7)

    def text() -> str | None:
        return rng.choice([None, *TEXTS])

    for _ in range(500):
        entry = PlanEntry(
            scene=rng.choice(TEXTS),
            l1c_path=rng.choice(TEXTS),
            decision=rng.choice(["todo", "done", "skipped"]),
            reason=text(),
            mgrs_tile=text(),
            sensing_start=text(),
            processing_baseline=text(),
            relative_orbit=rng.choice([None, 0, 140, 2**70]),
            size_bytes=rng.choice([0, 1, 2**63]),
            l2a=text(),
        )
        assert entry.to_json() == old_to_json(entry)
        state = SceneState(
            scene=rng.choice(TEXTS),
            state=rng.choice(["pending", "running", "done", "failed"]),
            attempt=rng.randint(0, 9),
            reason=text(),
            host=text(),
            pid=rng.choice([None, 1, 4_194_304]),
            job_id=text(),
            started=text(),
            ended=text(),
            log=text(),
            l2a=text(),
            exit_code=rng.choice([None, 0, 1, -9, 255]),
        )
        assert state.to_json() == old_to_json(state, indent=1)
        record = JobRecord(
            scheduler=rng.choice(["slurm", "lsf", "local"]),
            job_id=rng.choice(TEXTS),
            batch=rng.choice(TEXTS),
            first_index=rng.randint(0, 10**6),
            count=rng.randint(1, 1000),
            script=rng.choice(TEXTS),
            submitted=rng.choice(TEXTS),
            extra=rng.choice(
                [
                    {},
                    {"argv": ["sbatch", "--parsable", rng.choice(TEXTS)], "host": text()},
                    {"n": {"deep": [1, 2.5, None]}},
                ]
            ),
        )
        assert record.to_json() == old_to_json(record)


def test_a_field_added_to_a_record_is_serialised_without_more_code() -> None:
    # another change adds fields to PlanEntry (e.g. the Sen2Cor version and its route): to_json
    # must write them with no serialiser change
    Routed = dataclasses.make_dataclass(
        "Routed",
        [
            ("sen2cor", "str | None", dataclasses.field(default=None)),
            ("route", "str | None", dataclasses.field(default=None)),
        ],
        bases=(PlanEntry,),
        frozen=True,
    )
    entry = Routed(scene="s", l1c_path="p", decision="todo", sen2cor="2.12", route="baseline ≥ 05.00 → 2.12")
    doc = json.loads(entry.to_json())
    assert doc["sen2cor"] == "2.12" and doc["route"] == "baseline ≥ 05.00 → 2.12"
    assert entry.to_json() == old_to_json(entry)
    assert PlanEntry.to_json(PlanEntry("s", "p", "todo")) == old_to_json(PlanEntry("s", "p", "todo"))
