"""Property-based fuzz of the whole API from its own OpenAPI schema: no 5xx, no response off the schema."""

from __future__ import annotations

import pytest
import schemathesis
from click.testing import CliRunner
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from api.main import create_app
from cli.main import main as finetune_cli

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app())


@pytest.fixture()
def stored_token(clean_tables) -> dict[str, str]:
    """A user's token, as `finetune token create` makes it: the fuzz reaches past the auth check."""
    created = CliRunner().invoke(finetune_cli, ["token", "create", "fuzz"])
    assert created.exit_code == 0, created.output
    return {"Authorization": f"Bearer {created.output.strip()}"}


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_never_answers_5xx_nor_off_schema(case, stored_token):
    response = case.call(headers=stored_token)
    case.validate_response(response, checks=CHECKS)
    assert response.status_code != 401, response.text  # the token is good: the fuzz reached the route
