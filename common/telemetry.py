"""OpenTelemetry: traces and metrics over OTLP, configured by the standard `OTEL_*`
variables and off by default (README: "Telemetry (OpenTelemetry)").

Nothing happens at import. `setup()` runs once per serving process (config.startup:
wsgi, asgi, the Celery worker's child processes); until then, and whenever telemetry
is off, `traced()` hands back one shared no-op object and `count_decision()` /
`record_approval_latency()` return at their first test: no provider, no exporter, no
instrumentation, no middleware.

Spans carry only the attributes named in `ATTRIBUTES` (workspace slug, tool, outcome,
rule, code...), never a parameter value, an output or a secret: anything else passed
to `traced()` or `annotate()` is refused with a TypeError, so a call site cannot leak
one by accident. An error inside a span is recorded as its stable code, never as the
exception's message."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connections

try:  # the `otel` extra; without it telemetry stays off (and refuses to be switched on)
    from opentelemetry import metrics, trace
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import Status, StatusCode
except ImportError:  # pragma: no cover - exercised by monkeypatching `INSTALLED`
    INSTALLED = False
else:
    INSTALLED = True

logger = logging.getLogger(__name__)

SCOPE = "warden"

# The only span attributes Warden sets itself, each under the `warden.` prefix. Add a
# name here only for a value that can never be a parameter, an output or a secret.
ATTRIBUTES = frozenset(
    {
        "workspace",  # slug
        "tool",  # catalog name
        "outcome",  # allowed | denied | pending; an execution's status
        "rule",  # the gate rule that decided
        "code",  # a denial's or an error's stable code
        "action_id",
        "confirmation_id",
        "verdict",  # approve | deny
        "connector",  # connector name
        "upstream_tool",
        "latency_ms",
        "dry_run",
    }
)

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}


def enabled(environ: dict[str, str] | None = None) -> bool:
    """On when `WARDEN_OTEL_ENABLED` says so; otherwise on when an OTLP endpoint or a
    traces exporter other than `none` is configured. `OTEL_SDK_DISABLED=true` wins."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() in TRUE:
        return False
    explicit = env.get("WARDEN_OTEL_ENABLED", "").strip().lower()
    if explicit in TRUE:
        return True
    if explicit in FALSE:
        return False
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return True
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    return bool(exporter) and exporter != "none"


# --- state (one per process) ------------------------------------------------------------


@dataclass
class _State:
    tracer_provider: Any  # opentelemetry.sdk.trace.TracerProvider
    meter_provider: Any  # opentelemetry.sdk.metrics.MeterProvider
    tracer: Any
    decisions: Any
    approval_latency: Any


_state: _State | None = None


def active() -> bool:
    return _state is not None


def _clean(attrs: dict[str, Any]) -> dict[str, Any]:
    unknown = set(attrs) - ATTRIBUTES
    if unknown:
        raise TypeError(f"not a telemetry attribute: {sorted(unknown)}")
    return {
        f"warden.{name}": value if isinstance(value, bool | int | float) else str(value)
        for name, value in attrs.items()
        if value is not None and value != ""
    }


class _Span:
    """A Warden span: `set(**attrs)` adds allowed attributes; `.span` is OTel's."""

    __slots__ = ("span",)

    def __init__(self, span) -> None:
        self.span = span

    def set(self, **attrs: Any) -> None:
        self.span.set_attributes(_clean(attrs))


class _Off:
    """What `traced()` returns while telemetry is off: one shared object, no work."""

    __slots__ = ()

    def __enter__(self) -> _Off:
        return self

    def __exit__(self, *exc: object) -> bool:
        return False

    def set(self, **attrs: Any) -> None:
        return None


OFF = _Off()


def current_traceparent() -> str:
    """The current span's context as a W3C traceparent ('' while off or outside a
    span), to be stored and linked to later (a confirmation's wait)."""
    if _state is None:
        return ""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return ""
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def _link(traceparent: str) -> list:
    """[Link] to a stored traceparent; [] when blank or malformed (never an error)."""
    parts = traceparent.split("-") if traceparent else []
    if len(parts) != 4 or len(parts[1]) != 32 or len(parts[2]) != 16:
        return []
    try:
        context = trace.SpanContext(
            trace_id=int(parts[1], 16),
            span_id=int(parts[2], 16),
            is_remote=True,
            trace_flags=trace.TraceFlags(int(parts[3], 16) & 0xFF),
        )
    except ValueError:
        return []
    return [trace.Link(context)] if context.is_valid else []


class _Traced:
    __slots__ = ("_attrs", "_cm", "_links", "_name", "_wrapped")

    def __init__(self, name: str, attrs: dict[str, Any], link: str) -> None:
        self._name = name
        self._attrs = _clean(attrs)
        self._links = _link(link)

    def __enter__(self) -> _Span:
        assert _state is not None
        self._cm = _state.tracer.start_as_current_span(
            self._name,
            attributes=self._attrs,
            links=self._links,
            # Exceptions are recorded as their stable code only (see __exit__): their
            # message may quote what the caller sent.
            record_exception=False,
            set_status_on_exception=False,
        )
        self._wrapped = _Span(self._cm.__enter__())
        return self._wrapped

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is not None:
            span = self._wrapped.span
            code = getattr(exc, "code", "")
            span.set_attribute("warden.code", code if isinstance(code, str) and code else "error")
            span.set_attribute("error.type", exc_type.__qualname__)
            span.set_status(Status(StatusCode.ERROR))
        return bool(self._cm.__exit__(exc_type, exc, tb))


def traced(name: str, *, link: str = "", **attrs: Any) -> _Traced | _Off:
    """`with traced("warden.decide", workspace=slug, tool=name) as span: ...; span.set(
    outcome=...)`: a child of the current span (the request's, itself a child of the
    caller's `traceparent`), or the shared no-op while telemetry is off. `link`: a
    stored traceparent this span links to (an approval to the decision it answers)."""
    if _state is None:
        return OFF
    return _Traced(name, attrs, link)


def annotate(**attrs: Any) -> None:
    """Add allowed attributes to the current span (e.g. the gate's rule, known deep
    inside the decision)."""
    if _state is None:
        return
    trace.get_current_span().set_attributes(_clean(attrs))


# --- metrics ------------------------------------------------------------------------------


def count_decision(*, outcome: str, workspace: str) -> None:
    if _state is None:
        return
    _state.decisions.add(1, {"warden.outcome": outcome, "warden.workspace": workspace})


def record_approval_latency(*, seconds: float, verdict: str, workspace: str) -> None:
    if _state is None:
        return
    _state.approval_latency.record(
        max(seconds, 0.0), {"warden.verdict": verdict, "warden.workspace": workspace}
    )


@dataclass(frozen=True)
class Gauge:
    """An observable gauge read at each export by a cheap selector (`read` -> number)."""

    name: str
    description: str
    unit: str
    read: Callable[[], float]


def _observe(gauge: Gauge):
    def callback(options):
        try:
            value = gauge.read()
        except Exception:  # a database outage must not stop the exporter's thread
            logger.warning("telemetry gauge %s could not be read", gauge.name, exc_info=True)
            return []
        finally:
            # The reader runs in its own thread: do not keep that thread's connection
            # open between exports (never one inside a transaction, as in a test).
            for connection in connections.all(initialized_only=True):
                if not connection.in_atomic_block:
                    connection.close()
        return [metrics.Observation(value)]

    return callback


# --- set-up -------------------------------------------------------------------------------

# Request attributes that may hold the query string: a signed review link's token
# (approvals.review_link) or an OAuth state travels there, so spans keep the path only.
URL_ATTRIBUTES = ("http.url", "http.target", "url.full")


def _request_without_query(span, request) -> None:
    """Django instrumentation's request hook: drop the query string from the span."""
    if not span.is_recording():
        return
    attributes = getattr(span, "attributes", None) or {}
    for name in URL_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, str) and "?" in value:
            span.set_attribute(name, value.split("?", 1)[0])
    if attributes.get("url.query"):
        span.set_attribute("url.query", "")


def setup(
    *,
    gauges: Iterable[Gauge] = (),
    span_exporter: Any = None,
    metric_reader: Any = None,
    environ: dict[str, str] | None = None,
) -> bool:
    """Configure OpenTelemetry once for this process; True when it is on. The OTLP/HTTP
    exporters read `OTEL_EXPORTER_OTLP_*` themselves; tests pass their own exporter and
    reader (which switch telemetry on)."""
    global _state
    if _state is not None:
        return True
    if span_exporter is None and not enabled(environ):
        return False
    if not INSTALLED:
        raise ImproperlyConfigured(
            "OpenTelemetry is switched on (OTEL_* / WARDEN_OTEL_ENABLED) but the `otel` "
            "extra is not installed: pip install '.[otel]'."
        )
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "warden")})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter or OTLPSpanExporter()))
    reader = metric_reader or PeriodicExportingMetricReader(OTLPMetricExporter())
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = meter_provider.get_meter(SCOPE)
    for gauge in gauges:
        meter.create_observable_gauge(
            gauge.name, [_observe(gauge)], unit=gauge.unit, description=gauge.description
        )
    _state = _State(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        tracer=tracer_provider.get_tracer(SCOPE),
        decisions=meter.create_counter(
            "warden.decisions", unit="{decision}", description="Gate decisions by outcome."
        ),
        approval_latency=meter.create_histogram(
            "warden.approval.latency",
            unit="s",
            description="From a confirmation's request to a human's verdict.",
        ),
    )
    # The instrumentations take our providers explicitly (no global needed); the global
    # providers are set too, for libraries that look there.
    DjangoInstrumentor().instrument(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        request_hook=_request_without_query,
    )
    PsycopgInstrumentor().instrument(
        tracer_provider=tracer_provider, meter_provider=meter_provider, enable_commenter=False
    )
    CeleryInstrumentor().instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(tracer_provider)
    return True


def shutdown() -> None:
    """Flush and undo `setup()` (tests; a process that exits flushes on its own)."""
    global _state
    if _state is None:
        return
    state, _state = _state, None
    for instrumentor in (DjangoInstrumentor(), PsycopgInstrumentor(), CeleryInstrumentor()):
        instrumentor.uninstrument()
    state.tracer_provider.shutdown()
    state.meter_provider.shutdown()


def flush() -> None:
    if _state is not None:
        _state.tracer_provider.force_flush()
