"""OpenTelemetry (common.telemetry): an agent's trace includes Warden's decision, its
approval and its execution; no span carries a parameter value or a secret; OTLP/HTTP
really leaves the process; and with telemetry off nothing is set up at all."""

import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from celery.signals import worker_process_init
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, connections
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from approvals.models import ActionRequest
from common import telemetry
from config.celery import app as celery_app
from config.startup import GAUGES
from tenants.models import Role
from tests.gateway.conftest import SECRET
from tests.http_servers import serve_in_background

pytestmark = pytest.mark.django_db

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
AGENT_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{AGENT_SPAN_ID}-01"
PARAM_VALUE = "jane.doe-personal-7731@example.test"
CUSTOMER_ID = 77310042
OTEL_VARIABLES = (
    "OTEL_SDK_DISABLED",
    "WARDEN_OTEL_ENABLED",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_TRACES_EXPORTER",
)


@pytest.fixture
def no_otel_env(monkeypatch):
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def otel(no_otel_env):
    """Telemetry on, exporting to memory (the tests' exporter and metric reader)."""
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    assert telemetry.setup(span_exporter=spans, metric_reader=reader, gauges=GAUGES)
    yield spans, reader
    telemetry.shutdown()


def _finished(spans):
    telemetry.flush()
    return {span.name: span for span in spans.get_finished_spans()}


def _execute(client, tool, params, **headers):
    body = {"tool": tool, "params": params, "execute": True}
    return client.post("/api/v1/actions", body, format="json", **headers)


def _metric_points(reader, name):
    data = reader.get_metrics_data()
    return [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


# --- the agent's trace ---------------------------------------------------------------------


def test_the_agents_traceparent_is_the_parent_of_wardens_spans(otel, synced, gw_agent, upstream):
    spans, _ = otel
    _, client, _ = gw_agent
    response = _execute(
        client, "crm.lookup", {"customer_id": CUSTOMER_ID}, HTTP_TRACEPARENT=TRACEPARENT
    )
    assert response.status_code == 200, response.json()
    found = _finished(spans)
    request = found["POST api/v1/actions"]
    decide, execute = found["warden.decide"], found["warden.execute"]
    for span in (request, decide, execute):
        assert format(span.context.trace_id, "032x") == TRACE_ID
    assert format(request.parent.span_id, "016x") == AGENT_SPAN_ID
    assert request.parent.is_remote
    assert decide.parent.span_id == request.context.span_id
    assert execute.parent.span_id == request.context.span_id
    assert decide.attributes["warden.workspace"] == synced.workspace.slug
    assert decide.attributes["warden.tool"] == "crm.lookup"
    assert decide.attributes["warden.outcome"] == "allowed"
    assert decide.attributes["warden.rule"]
    assert decide.attributes["warden.action_id"] == response.json()["id"]
    assert execute.attributes["warden.connector"] == synced.name
    assert execute.attributes["warden.upstream_tool"] == "lookup"
    assert execute.attributes["warden.outcome"] == "succeeded"
    assert execute.attributes["warden.latency_ms"] >= 0


def test_a_call_without_traceparent_starts_its_own_trace(otel, synced, gw_agent, upstream):
    spans, _ = otel
    _, client, _ = gw_agent
    assert _execute(client, "crm.lookup", {"customer_id": 1}).status_code == 200
    found = _finished(spans)
    assert found["POST api/v1/actions"].parent is None
    assert found["warden.decide"].context.trace_id == found["POST api/v1/actions"].context.trace_id


def test_no_span_carries_a_parameter_value_or_a_secret(
    otel, synced, gw_agent, gw_workspace, upstream, make_member, approve
):
    spans, _ = otel
    _, client, plaintext = gw_agent
    allowed = _execute(client, "crm.lookup", {"customer_id": CUSTOMER_ID})
    assert allowed.status_code == 200
    pending = _execute(client, "crm.send", {"to": PARAM_VALUE}, HTTP_TRACEPARENT=TRACEPARENT)
    assert pending.status_code == 202
    action = ActionRequest.objects.get(pk=pending.json()["id"])
    approver = make_member(gw_workspace, Role.APPROVER)
    assert approve(approver, gw_workspace, action.confirmation.pk).status_code == 200
    assert _execute(client, "crm.send", {"to": PARAM_VALUE}).status_code == 200
    refused = _execute(client, "crm.lookup", "not an object")  # an error inside the span
    assert refused.status_code == 400
    telemetry.flush()
    finished = spans.get_finished_spans()
    assert {"warden.decide", "warden.approval", "warden.execute"} <= {s.name for s in finished}
    text = repr(
        [
            (s.name, dict(s.attributes), [(e.name, dict(e.attributes)) for e in s.events])
            for s in finished
        ]
    )
    for secret in (PARAM_VALUE, str(CUSTOMER_ID), plaintext, SECRET, "sk-live", "not an object"):
        assert secret not in text


def test_request_spans_keep_the_path_not_the_query_string(otel, gw_agent):
    """A signed review link's token travels in the query string: spans never keep it."""
    spans, _ = otel
    _, client, _ = gw_agent
    token = "signed-review-link-token-5521"
    assert client.get(f"/api/v1/whoami?link={token}").status_code == 200
    telemetry.flush()
    [request] = [s for s in spans.get_finished_spans() if s.kind.name == "SERVER"]
    assert any("/api/v1/whoami" in str(v) for v in request.attributes.values())
    assert token not in repr(dict(request.attributes))


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the psycopg instrumentation: PostgreSQL only"
)
@pytest.mark.django_db(transaction=True)
def test_database_spans_carry_statements_not_values(otel, synced, gw_agent, upstream):
    """A connection opened after set-up is instrumented (psycopg): its spans name the SQL
    with placeholders, never the bound values, and the decision path still works with
    Warden's prepared statements (common.db) under the instrumentation."""
    spans, _ = otel
    connections.close_all()  # the next query opens an instrumented connection
    _, client, plaintext = gw_agent
    response = _execute(client, "crm.send", {"to": PARAM_VALUE}, HTTP_TRACEPARENT=TRACEPARENT)
    assert response.status_code == 202, response.json()
    telemetry.flush()
    finished = spans.get_finished_spans()
    # The request's statements, in the agent's trace (the fixtures' own set-up may have
    # run on an instrumented connection too, outside it).
    database = [
        s
        for s in finished
        if s.attributes.get("db.system") == "postgresql"
        and format(s.context.trace_id, "032x") == TRACE_ID
    ]
    assert database, [s.name for s in finished]
    text = repr([dict(s.attributes) for s in finished])
    for secret in (PARAM_VALUE, plaintext, plaintext.split("_")[-1]):
        assert secret not in text


def test_unknown_attributes_are_refused_so_a_value_cannot_slip_in(otel):
    with pytest.raises(TypeError, match="not a telemetry attribute"):
        telemetry.traced("warden.decide", params={"to": PARAM_VALUE})


# --- approvals and metrics -------------------------------------------------------------


def test_an_approval_is_a_span_and_its_wait_a_latency(
    otel, synced, gw_agent, gw_workspace, make_member, approve
):
    spans, reader = otel
    _, client, _ = gw_agent
    pending = _execute(client, "crm.send", {"to": "bob"}, HTTP_TRACEPARENT=TRACEPARENT)
    assert pending.status_code == 202
    asked = _finished(spans)["warden.decide"]
    assert asked.attributes["warden.outcome"] == "pending"
    assert [p.value for p in _metric_points(reader, "warden.approvals.pending")] == [1]
    action = ActionRequest.objects.get(pk=pending.json()["id"])
    approver = make_member(gw_workspace, Role.APPROVER)
    assert approve(approver, gw_workspace, action.confirmation.pk).status_code == 200
    approval = _finished(spans)["warden.approval"]
    assert approval.attributes["warden.verdict"] == "approve"
    assert approval.attributes["warden.outcome"] == "approved"
    assert approval.attributes["warden.confirmation_id"] == str(action.confirmation.pk)
    # The approver's request is its own trace; the wait links it to the agent's decision.
    assert format(approval.context.trace_id, "032x") != TRACE_ID
    [link] = approval.links
    assert format(link.context.trace_id, "032x") == TRACE_ID
    assert link.context.span_id == asked.context.span_id
    latency = _metric_points(reader, "warden.approval.latency")
    assert [(p.count, dict(p.attributes)["warden.verdict"]) for p in latency] == [(1, "approve")]
    decisions = {
        dict(p.attributes)["warden.outcome"]: p.value
        for p in _metric_points(reader, "warden.decisions")
    }
    assert decisions == {"pending": 1}
    assert [p.value for p in _metric_points(reader, "warden.approvals.pending")] == [0]
    assert [p.value for p in _metric_points(reader, "warden.audit.sealer_lag")] == [0.0]


# --- OTLP/HTTP to a receiver ---------------------------------------------------------------


class _Receiver(BaseHTTPRequestHandler):
    received: list

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []
    serve_in_background(server)
    yield server
    server.shutdown()
    server.server_close()


def test_spans_reach_an_otlp_http_receiver(
    no_otel_env, monkeypatch, receiver, synced, gw_agent, upstream
):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{receiver.server_port}")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "warden-test")
    assert telemetry.setup()  # the standard variable switches it on
    try:
        _, client, _ = gw_agent
        response = _execute(client, "crm.lookup", {"customer_id": 3}, HTTP_TRACEPARENT=TRACEPARENT)
        assert response.status_code == 200
        telemetry.flush()
    finally:
        telemetry.shutdown()  # also pushes the metrics once
    traces = [body for path, _, body in receiver.received if path == "/v1/traces"]
    assert traces, receiver.received
    assert {ctype for _, ctype, _ in receiver.received} == {"application/x-protobuf"}
    assert "/v1/metrics" in {path for path, _, _ in receiver.received}
    names, trace_ids, services = set(), set(), set()
    for body in traces:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            services |= {
                a.value.string_value
                for a in resource_spans.resource.attributes
                if a.key == "service.name"
            }
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    names.add(span.name)
                    trace_ids.add(span.trace_id.hex())
    assert {"warden.decide", "warden.execute", "POST api/v1/actions"} <= names
    assert TRACE_ID in trace_ids
    assert services == {"warden-test"}


SERVE_ONE_REQUEST = """
import io, wsgiref.util
import config.wsgi
environ = {"PATH_INFO": "/api/v1/whoami", "REQUEST_METHOD": "GET",
           "HTTP_TRACEPARENT": "@TRACEPARENT@", "wsgi.input": io.BytesIO()}
wsgiref.util.setup_testing_defaults(environ)
statuses = []
config.wsgi.application(environ, lambda status, headers: statuses.append(status))
print(statuses[0])
from common import telemetry
telemetry.shutdown()
""".replace("@TRACEPARENT@", TRACEPARENT)


@pytest.mark.db_independent
def test_the_wsgi_process_exports_its_requests_spans(no_otel_env, receiver):
    """config.wsgi switches telemetry on from the environment before Django builds its
    middleware chain: a served request reaches the collector, in the caller's trace."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "WARDEN_OTEL"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.test_settings",
        DATABASE_URL="",
        ALLOWED_HOSTS="127.0.0.1",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{receiver.server_port}",
    )
    result = subprocess.run(
        [sys.executable, "-c", SERVE_ONE_REQUEST],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] in {"400", "401"}  # refused, and traced
    spans = [
        span
        for path, _, body in receiver.received
        if path == "/v1/traces"
        for resource_spans in ExportTraceServiceRequest.FromString(body).resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]
    served = [span for span in spans if span.name.startswith("GET")]
    assert len(served) == 1, ([span.name for span in spans], result.stderr[-2000:])
    request = served[0]
    assert request.trace_id.hex() == TRACE_ID
    assert request.parent_span_id.hex() == AGENT_SPAN_ID


def test_each_celery_worker_process_starts_telemetry(no_otel_env, monkeypatch, receiver):
    assert celery_app.main == "warden"  # config.celery (its handlers) is loaded
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{receiver.server_port}")
    worker_process_init.send(sender=None)  # as the prefork pool does after each fork
    try:
        assert telemetry.active()
    finally:
        telemetry.shutdown()


# --- off by default ----------------------------------------------------------------------


def test_off_by_default_nothing_is_set_up(no_otel_env, synced, gw_agent, upstream):
    assert telemetry.setup(gauges=GAUGES) is False
    assert not telemetry.active()
    assert telemetry.traced("warden.decide", workspace="w") is telemetry.OFF
    assert not any("opentelemetry" in m for m in settings.MIDDLEWARE)
    _, client, _ = gw_agent
    response = _execute(client, "crm.lookup", {"customer_id": 1}, HTTP_TRACEPARENT=TRACEPARENT)
    assert response.status_code == 200
    pending = _execute(client, "crm.send", {"to": "bob"}, HTTP_TRACEPARENT=TRACEPARENT)
    assert pending.status_code == 202
    action = ActionRequest.objects.get(pk=pending.json()["id"])
    assert action.confirmation.trace_parent == ""  # nothing stored while off
    assert telemetry.current_traceparent() == ""
    assert not telemetry.active()


def test_the_off_path_does_no_work(no_otel_env, monkeypatch):
    """While off, the hooks return before touching OpenTelemetry at all."""
    assert not telemetry.active()

    def boom(*args, **kwargs):
        raise AssertionError("OpenTelemetry touched while off")

    monkeypatch.setattr(telemetry, "_clean", boom)
    monkeypatch.setattr(telemetry.trace, "get_current_span", boom)
    with telemetry.traced("warden.decide", params="ignored while off") as span:
        span.set(anything=1)
    telemetry.annotate(rule="x")
    telemetry.count_decision(outcome="allowed", workspace="w")
    telemetry.record_approval_latency(seconds=1.0, verdict="approve", workspace="w")


@pytest.mark.parametrize(
    "stored", ["", "garbage", "00-zz-00f067aa0ba902b7-01", f"00-{'0' * 32}-{AGENT_SPAN_ID}-01"]
)
def test_a_malformed_stored_traceparent_is_no_link_and_no_error(otel, stored):
    spans, _ = otel
    with telemetry.traced("warden.approval", link=stored, verdict="approve"):
        pass
    assert _finished(spans)["warden.approval"].links == ()


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "none"}, False),
        ({"WARDEN_OTEL_ENABLED": "true"}, True),
        ({"WARDEN_OTEL_ENABLED": "false", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),
        ({"OTEL_SDK_DISABLED": "true", "WARDEN_OTEL_ENABLED": "true"}, False),
    ],
)
def test_what_switches_telemetry_on(environ, on):
    assert telemetry.enabled(environ) is on


def test_setup_twice_configures_once(otel):
    spans, _ = otel
    assert telemetry.setup(span_exporter=InMemorySpanExporter())
    with telemetry.traced("warden.decide", workspace="w"):
        pass
    assert list(_finished(spans)) == ["warden.decide"]


def test_switched_on_without_the_otel_extra_refuses_to_start(no_otel_env, monkeypatch):
    monkeypatch.setattr(telemetry, "INSTALLED", False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    with pytest.raises(ImproperlyConfigured, match="otel"):
        telemetry.setup()
    assert not telemetry.active()
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")
    assert telemetry.setup() is False  # off: the extra is not needed
