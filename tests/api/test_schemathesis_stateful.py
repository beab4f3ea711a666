"""Stateful Schemathesis over the whole OpenAPI document, against the live server, on every backend.

DESIGN "Decisions that settle conflicts": schemathesis runs authenticated and checks for server
errors and schema conformance. The stateless run (test_schemathesis.py) calls each operation on
seeded objects; this one chains calls the way a client does: the OpenAPI links of every create
(api/openapi.py `links`) and the links Schemathesis infers from the document carry the new
object's id into the next call (create a team -> create a site in it -> a group, a charger ->
read, update, detach, delete ...). Besides the response checks it runs the stateful ones: a
created object can be read (`ensure_resource_availability`) and a deleted one cannot
(`use_after_free`). The caller is a fresh account; generated `{team}` values are mostly its own
team, so root calls get past the 403.

Generation is seeded and bounded (SCENARIOS x STEPS per run) so each backend finishes in about a
minute. The server's state outlives a scenario (an identity taken in one is taken in the next),
so Hypothesis may find a replayed choice leading elsewhere and stop with `Flaky`; the
Schemathesis engine then starts a new run, and so does this test, with the next seed, until
CALLS calls were made. Failures are recorded when a check fails, so a stop cannot hide one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import hypothesis.strategies as st
import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import (
    FailureGroup,
    content_type_conformance,
    ensure_resource_availability,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    use_after_free,
)
from schemathesis.specs.openapi.stateful import OpenAPIStateMachine

from tests.conftest import LiveServer
from voltline import codec
from voltline.api import ENDPOINTS
from voltline.api.openapi import build_openapi
from voltline.services.accounts import Account

SCENARIOS = 100
STEPS = 15
CALLS = 2_000
RUNS_MAX = 8
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    ensure_resource_availability,
    use_after_free,
]
SETTINGS = hypothesis.settings(
    max_examples=SCENARIOS,
    stateful_step_count=STEPS,
    database=None,
    deadline=None,
    phases=[hypothesis.Phase.generate],
    suppress_health_check=list(hypothesis.HealthCheck),
)

# The document /openapi.json serves (test_openapi.py proves the two are equal).
SCHEMA = schemathesis.openapi.from_dict(codec.to_builtins(build_openapi(ENDPOINTS)))
# Positive data: a chain needs calls that succeed (test_schemathesis.py sends the garbage).
for generation in (SCHEMA.config.generation, SCHEMA.config.phases.stateful.generation):
    generation.update(
        modes=[GenerationMode.POSITIVE], with_security_parameters=False, deterministic=True, database="none"
    )
# The document's own links only: inference pairs fields by name and fills `{team}` with a team's name.
SCHEMA.config.phases.stateful.inference.algorithms = []
CALLER: list[tuple[LiveServer, Account]] = []


@dataclass
class Findings:
    """What the runs did: calls made, statuses seen, and every failed check."""

    calls: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


FINDINGS: list[Findings] = []


@SCHEMA.hook
def flatmap_path_parameters(_context: Any, path_parameters: dict[str, Any] | None) -> Any:
    """A generated `{team}` is the caller's own team three times in four (links still set their own ids)."""
    if not path_parameters or "team" not in path_parameters:
        return st.just(path_parameters)
    own = str(CALLER[-1][1].team_id)
    team = st.sampled_from([own, own, own, path_parameters["team"]])
    return team.map(lambda value: {**path_parameters, "team": value})


class Workflow(SCHEMA.as_state_machine()):  # type: ignore[misc]
    """The API driven as a client would: authenticated as the caller, every response checked."""

    def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
        server, account = CALLER[-1]
        return {"base_url": server.base_url, "headers": {"Authorization": f"Bearer {account.token}"}}

    def validate_response(self, response: Any, case: schemathesis.Case, *_: Any, **kwargs: Any) -> None:
        findings = FINDINGS[-1]
        findings.calls += 1
        findings.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs or None, recorder=self.recorder)
        except FailureGroup as group:
            findings.failures += [
                f"{case.method} {case.formatted_path} -> {response.status_code}: {e}" for e in group.exceptions
            ]
            raise


def test_the_document_links_every_create_to_the_operations_on_what_it_made() -> None:
    """OpenAPI 3.1 links: create -> read/update/delete, the new id taken from the 201 body."""
    state_machine: type[OpenAPIStateMachine] = Workflow
    transitions = state_machine._transitions.operations
    site = transitions["POST /api/v2/teams/{team}/sites"].outgoing
    targets = {link.target.label for link in site}
    assert {
        "GET /api/v2/teams/{team}/sites/{site}",
        "PUT /api/v2/teams/{team}/sites/{site}",
        "DELETE /api/v2/teams/{team}/sites/{site}",
        "POST /api/v2/teams/{team}/sites/{site}/groups",
    } <= targets


@pytest.mark.slow
def test_chained_calls_over_the_whole_document_answer_within_their_schemas(
    server: LiveServer, account: Account
) -> None:
    """No 5xx, every status documented, bodies and headers as declared, created objects readable, deleted gone."""
    findings = Findings()
    CALLER.append((server, account))
    FINDINGS.append(findings)
    try:
        for run in range(RUNS_MAX):
            if findings.calls >= CALLS or findings.failures:
                break
            try:
                hypothesis.seed(run)(Workflow).run(settings=SETTINGS)
            except hypothesis.errors.Flaky:
                continue  # the server's state moved on under a replayed choice; the next seed goes on
            except FailureGroup:
                break
    finally:
        CALLER.remove((server, account))
        FINDINGS.remove(findings)
    assert findings.failures == [], findings
    assert findings.calls >= CALLS and findings.statuses[201] > 0 and findings.statuses[204] > 0, findings
