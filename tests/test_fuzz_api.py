"""Fuzz the REST API from its own OpenAPI schema (schemathesis): no input may cause a server error, and every
response must match the documented status codes, content types and schemas."""
import atexit
import shutil
import tempfile
from pathlib import Path

import schemathesis
from helpers import random_line_model_dir, random_model_dir
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from emnist_cnn.recognition import Recognizer
from emnist_cnn.serving.app import create_app

# Built at collection time: schemathesis parametrizes the test from the schema (a tiny untrained model suffices).
MODEL_ROOT = Path(tempfile.mkdtemp(prefix="emnist-cnn-fuzz-"))
atexit.register(shutil.rmtree, MODEL_ROOT, ignore_errors=True)
APP = create_app(Recognizer.load(random_model_dir(MODEL_ROOT / "model"),
                                 lines=random_line_model_dir(MODEL_ROOT / "lines")))  # both readers
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_fails(case):
    case.call_and_validate(checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                                   response_schema_conformance])
