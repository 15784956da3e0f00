"""Fuzzing the gRPC request mapping: random trafex.v1 requests, and random bytes parsed
as requests, through the adapter and through the real servicer over a real Controller
(its store in a temp dir, GoBGP a FakeRib).

Whatever the request: the mapping answers model values or a ValidationError; the
servicer answers or fails with a mapped status (never INTERNAL, which is a bug's); and a
refused request changes nothing: the controller's intents, the store and the RIB are as
they were. Derandomized, no example database.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from tests.unit.fakeapi import serve
from tests.unit.fakerib import Rig, rig
from trafex.api import rpc
from trafex.api.stubs import trafex_pb2 as pb
from trafex.api.stubs import trafex_pb2_grpc
from trafex.model.errors import ValidationError

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
MAPPING = settings(FUZZ, max_examples=400)

# What a refused request may answer: each names the problem; INTERNAL is a bug's.
REFUSED = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}

# -- strategies ---------------------------------------------------------------------------

U32, U64 = 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF
# proto3 strings are UTF-8: no lone surrogates.
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=24)
junk_enums = st.integers(-(2**31), 2**31 - 1)


def mostly(common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``common`` three times in four, else ``rare`` (one_of would draw each half the time)."""
    return st.integers(0, 3).flatmap(lambda n: rare if n == 0 else common)


def enums(count: int) -> st.SearchStrategy[int]:
    """Mostly the enum's ``count`` values, sometimes any int32 (unknown to this API)."""
    return mostly(st.integers(0, count - 1), junk_enums)


u32s = mostly(st.integers(0, 300), st.sampled_from((0, 1, 63, 64, 0xFFFF, 0x10000, U32)))
u64s = mostly(u32s, st.integers(0, U64))
# Host prefixes (/32, /128), each new: most adds create an intent.
hosts = st.one_of(
    st.integers(0, 0xFFFFFF).map(lambda n: f"10.{n >> 16}.{n >> 8 & 255}.{n & 255}/32"),
    st.integers(0, 0xFFFF).map(lambda n: f"3001:4:b::{n:x}/128"),
)
PREFIXES = (
    "10.0.0.0/8", "0.0.0.0/0", "10.0.0.1/33", "10.0.0.1", "3001::/64", "::/0", "3001::/129",
    "fe80::1%eth0", "x", "", "10.0.0.1/24", "::ffff:1.2.3.4", "3001:4:b::10",
)  # fmt: skip
prefix_texts = mostly(hosts, st.sampled_from(PREFIXES) | texts)
RULE_TEXTS = (
    "destination 10.0.0.1/32 discard",
    "destination 3001:4:b::10/128 protocol =tcp destination-port =443 rate-limit 1000",
    "source 3001:1:a::10/129 destination x redirect 6:302",
    "destination 0.0.0.0/0 discard",
    "protocol udp discard",
    "destination ::/0 rate-limit 0",
    "destination 10.0.0.7/32 redirect 65000L:7 mark 10 action sample-terminal",
)
rule_texts = st.one_of(
    hosts.map(lambda p: f"destination {p} protocol =udp rate-limit 100"),
    st.sampled_from(RULE_TEXTS),
    texts,
)


def numeric_terms() -> st.SearchStrategy[Any]:
    return st.builds(
        lambda op, value, and_: pb.NumericTerm(op=op, value=value, **{"and": and_}),
        enums(9),
        u64s,
        st.booleans(),
    )


def bitmask_terms() -> st.SearchStrategy[Any]:
    return st.builds(
        lambda value, match, not_, and_: pb.BitmaskTerm(
            value=value, match=match, **{"not": not_, "and": and_}
        ),
        u32s,
        st.booleans(),
        st.booleans(),
        st.booleans(),
    )


_TERM_FIELDS = {
    name: numeric_terms()
    for name in (
        "protocol", "port", "destination_port", "source_port", "icmp_type", "icmp_code",
        "packet_length", "dscp", "flow_label",
    )
}  # fmt: skip
_TERM_FIELDS |= {"tcp_flags": bitmask_terms(), "fragment": bitmask_terms()}
flow_prefixes = st.builds(
    lambda p, o: pb.FlowPrefix(prefix=p, offset=o), prefix_texts, mostly(st.just(0), u32s)
)


@st.composite
def flow_matches(draw: st.DrawFn) -> Any:
    message: Any = pb.FlowMatch()
    message.family = draw(enums(3))
    for name in ("destination", "source"):
        if draw(st.booleans()):
            getattr(message, name).CopyFrom(draw(flow_prefixes))
    for name, terms in _TERM_FIELDS.items():
        if draw(st.integers(0, 6)) == 0:
            getattr(message, name).extend(draw(st.lists(terms, min_size=1, max_size=3)))
    return message


@st.composite
def flow_actions(draw: st.DrawFn) -> Any:
    message: Any = pb.FlowActions(
        discard=draw(st.booleans()), sample=draw(st.booleans()), terminal=draw(st.booleans())
    )
    if draw(st.booleans()):
        message.rate_limit = draw(
            st.one_of(
                st.floats(1, 1e9, width=32),
                st.floats(width=32),
                st.sampled_from((0.0, -1.0, math.inf, math.nan)),
            )
        )
    if draw(st.booleans()):
        message.redirect.kind = draw(enums(4))
        setattr(
            message.redirect, "global", draw(st.sampled_from(("6", "1.2.3.4", "70000")) | texts)
        )
        message.redirect.local = draw(u32s)
    if draw(st.booleans()):
        message.mark_dscp = draw(st.integers(0, 63) | u32s)
    return message


@st.composite
def flow_specs(draw: st.DrawFn) -> Any:
    """Text, or match and actions (each maybe missing), or both (refused)."""
    message = pb.FlowSpec()
    mode = draw(st.sampled_from(("text", "text", "structure", "structure", "structure", "both")))
    if mode != "structure":
        message.text = draw(rule_texts)
    if mode != "text":
        if draw(st.integers(0, 5)) > 0:
            message.match.CopyFrom(draw(flow_matches()))
        if draw(st.integers(0, 5)) > 0:
            message.actions.CopyFrom(draw(flow_actions()))
    return message


intent_options = st.builds(
    lambda ttl, reason, origin, force: pb.IntentOptions(
        ttl_seconds=ttl, reason=reason, origin=origin, force=force
    ),
    u32s,
    texts,
    st.sampled_from(("", "api", "cli")) | texts,
    st.booleans(),
)
add_flows = st.builds(
    lambda flow, options: pb.AddFlowRequest(flow=flow, options=options),
    flow_specs(),
    intent_options,
)


@st.composite
def route_specs(draw: st.DrawFn) -> Any:
    message = pb.RouteSpec(
        prefix=draw(prefix_texts),
        next_hop=draw(st.sampled_from(("", "self", "1.2.3.4", "3001::1", "fe80::1%eth0", "x"))),
        communities=draw(
            st.lists(st.sampled_from(("65000:666", "no-export", "1:70000", "x")), max_size=3)
        ),
        large_communities=draw(st.lists(st.sampled_from(("1:2:3", "1:2:3", "1:2")), max_size=2)),
    )
    if draw(st.booleans()):
        message.local_preference = draw(u32s)
    if draw(st.booleans()):
        message.med = draw(u32s)
    return message


add_routes = st.builds(
    lambda route, options: pb.AddRouteRequest(route=route, options=options),
    route_specs(),
    intent_options,
)
ids = st.sampled_from(("fs-nonexist", "rt-nonexist", "", "fs-", "x" * 300)) | texts


@st.composite
def delete_flows(draw: st.DrawFn) -> Any:
    choice = draw(st.integers(0, 2))
    if choice == 0:
        return pb.DeleteFlowRequest(id=draw(ids))
    if choice == 1:
        return pb.DeleteFlowRequest(flow=draw(flow_specs()))
    return pb.DeleteFlowRequest()


def parsed(kind: Any) -> st.SearchStrategy[Any]:
    """Random bytes that parse as a ``kind`` message (those that do not are skipped)."""

    def parse(data: bytes) -> Any:
        try:
            return kind.FromString(data)
        except DecodeError:
            assume(False)
            raise

    return st.binary(max_size=96).map(parse)


# -- the mapping alone ------------------------------------------------------------------------


def _mapped(function: Any, *args: Any) -> None:
    with contextlib.suppress(ValidationError):
        function(*args)


@MAPPING
@given(st.lists(add_flows | parsed(pb.AddFlowRequest), min_size=1, max_size=3))
def test_flow_requests_map_to_rules_or_a_validation_error(requests: list[Any]) -> None:
    """Any AddFlow/AddFlows request: rules and options, or a ValidationError."""
    _mapped(rpc.flow_requests_from_proto, requests)


@MAPPING
@given(add_routes | parsed(pb.AddRouteRequest))
def test_route_requests_map_to_a_route_or_a_validation_error(request: Any) -> None:
    """Any AddRoute request: a route and options, or a ValidationError."""
    _mapped(rpc.route_request_from_proto, request)


@MAPPING
@given(delete_flows() | parsed(pb.DeleteFlowRequest), parsed(pb.DeleteRouteRequest))
def test_selectors_map_or_refuse(flow: Any, route: Any) -> None:
    """Any DeleteFlow/DeleteRoute request: an id or a match/prefix, or a ValidationError."""
    _mapped(rpc.flow_selector, flow)
    _mapped(rpc.route_selector, route)


# -- through the servicer and a real controller ----------------------------------------------


@dataclass
class Served:
    rig: Rig
    stub: Any


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A real Controller (store in a temp dir, a FakeRib) behind the real servicer,
    holding one rule and one route to start with; one for the module (hypothesis runs
    many examples per test)."""
    directory: Path = tmp_path_factory.mktemp("fuzz-api")
    with rig(directory / "state") as made, serve(made.controller) as api:
        channel = grpc.insecure_channel(api.target)
        stub = trafex_pb2_grpc.TrafexStub(channel)
        stub.AddFlow(pb.AddFlowRequest(flow=pb.FlowSpec(text=RULE_TEXTS[0])), timeout=10)
        stub.AddRoute(pb.AddRouteRequest(route=pb.RouteSpec(prefix="3001::5/128")), timeout=10)
        try:
            yield Served(made, stub)
        finally:
            channel.close()


def state(made: Rig) -> tuple[Any, ...]:
    """What is in force: the controller's intents, the store's, GoBGP's paths."""
    made.controller.flush()
    intents: dict[str, Any] = {i.meta.id: i for i in made.controller.flows()}
    intents |= {i.meta.id: i for i in made.controller.routes()}
    stored, problems = made.store.load()
    return intents, {i.meta.id: i for i in stored}, problems, made.rib.paths


def call(served: Served, method: str, request: Any) -> None:
    """Call ``method``; a failure must be a mapped status and change nothing."""
    before = state(served.rig)
    try:
        getattr(served.stub, method)(request, timeout=10)
        event(f"{method}: OK")
    except grpc.RpcError as raised:
        error: Any = raised
        code, details = error.code(), error.details()
        short = re.sub(r"\d+|'.*'", "N", details)[:50]
        event(f"{method}: {code.name} {short}")
        assert code in REFUSED, f"{method}: {code} {details}\n{request}"
        assert details, f"{method}: {code} without a message"
        assert state(served.rig) == before, f"{method} refused ({details}) but changed state"


@FUZZ
@given(mostly(add_flows, parsed(pb.AddFlowRequest)))
def test_add_flow_answers_or_refuses_cleanly(served: Served, request: Any) -> None:
    """AddFlow with any request: an answer, or a mapped status and nothing changed."""
    call(served, "AddFlow", request)


@FUZZ
@given(mostly(st.lists(add_flows, min_size=2, max_size=3), parsed(pb.AddFlowsRequest)))
def test_add_flows_answers_or_refuses_cleanly(served: Served, requests: Any) -> None:
    """AddFlows (a batch, all or none) with any requests: the same."""
    batch = (
        requests if isinstance(requests, pb.AddFlowsRequest) else pb.AddFlowsRequest(flows=requests)
    )
    call(served, "AddFlows", batch)


@FUZZ
@given(mostly(add_routes, parsed(pb.AddRouteRequest)))
def test_add_route_answers_or_refuses_cleanly(served: Served, request: Any) -> None:
    """AddRoute with any request: the same."""
    call(served, "AddRoute", request)


@FUZZ
@given(mostly(delete_flows(), parsed(pb.DeleteFlowRequest)))
def test_delete_flow_answers_or_refuses_cleanly(served: Served, request: Any) -> None:
    """DeleteFlow with any id or match: the same (an unknown id is NOT_FOUND)."""
    call(served, "DeleteFlow", request)


def test_an_unknown_id_is_not_found(served: Served) -> None:
    """DeleteFlow of an id nobody holds answers NOT_FOUND naming it (not a grammar error)."""
    with pytest.raises(grpc.RpcError) as info:
        served.stub.DeleteFlow(pb.DeleteFlowRequest(id="fs-nonexist"), timeout=10)
    error: Any = info.value
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "fs-nonexist" in error.details()
