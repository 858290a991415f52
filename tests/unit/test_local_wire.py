"""The local server's HTTP request reader: a head seen before is reused, never trusted blindly."""

from __future__ import annotations

import pytest

from mlops_cli.targets.local import wire
from mlops_cli.targets.local.wire import BodyPlan, Head, HttpError, RequestReader


def _length_plan(head: Head) -> BodyPlan:
    return BodyPlan(length=int(head.get("content-length") or 0), limit=1 << 20)


def _post(body: bytes, extra: str = "") -> bytes:
    return (f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:9\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def test_a_keep_alive_client_repeating_its_head_gets_every_request_with_its_own_body():
    reader = RequestReader(_length_plan)
    reader.feed(_post(b'{"a":1}') + _post(b'{"b":22}') + _post(b'{"a":1}'))
    got = [reader.next() for _ in range(3)]
    assert [r.body for r in got] == [b'{"a":1}', b'{"b":22}', b'{"a":1}']
    assert all(r.head.method == "POST" and r.head.target == "/predict" for r in got)
    assert got[0].head.fields["host"] == "127.0.0.1:9"
    assert reader.next() is None
    assert not reader.started


def test_a_head_differing_in_one_header_is_parsed_afresh():
    reader = RequestReader(_length_plan)
    reader.feed(_post(b"{}", "X-Trace: one\r\n") + _post(b"{}", "X-Trace: two\r\n"))
    assert reader.next().head.get("x-trace") == "one"
    assert reader.next().head.get("x-trace") == "two"


def test_a_remembered_head_is_still_refused_by_a_reader_allowing_fewer_headers():
    data = _post(b"", "A: 1\r\nB: 2\r\nC: 3\r\n")
    roomy = RequestReader(_length_plan)
    roomy.feed(data)
    assert roomy.next().head.get("c") == "3"
    strict = RequestReader(_length_plan, max_headers=3)
    strict.feed(data)
    with pytest.raises(HttpError) as refused:
        strict.next()
    assert refused.value.status == 431


def test_a_malformed_head_is_refused_every_time_it_is_sent():
    for _ in range(2):
        reader = RequestReader(_length_plan)
        reader.feed(b"POST /predict HTTP/1.1\r\nno colon here\r\n\r\n")
        with pytest.raises(HttpError) as refused:
            reader.next()
        assert refused.value.status == 400


def test_heads_the_owner_does_not_keep_and_a_flood_of_distinct_heads_stay_bounded():
    wire._HEADS.clear()
    posts = RequestReader(_length_plan, keep=lambda head: head.method == "GET")
    for n in range(20):
        posts.feed(f"POST /invocation/{n}/response HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
                   .encode())
        assert posts.next().head.target == f"/invocation/{n}/response"
    assert not wire._HEADS
    flood = RequestReader(_length_plan)
    for n in range(wire._MEMO_SIZE * 3):
        flood.feed(f"GET /health?n={n} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert flood.next().head.target == f"/health?n={n}"
    assert len(wire._HEADS) <= wire._MEMO_SIZE


def test_a_request_split_across_reads_comes_out_once_whole():
    reader = RequestReader(_length_plan)
    data = _post(b'{"features":[1,2,3,4]}')
    for i in range(len(data) - 1):
        reader.feed(data[i:i + 1])
        assert reader.next() is None
    assert reader.partial_head is False
    reader.feed(data[-1:])
    assert reader.next().body == b'{"features":[1,2,3,4]}'
