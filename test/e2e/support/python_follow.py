"""Follows one stream with Debian's grpcio, as a Python client of the mesh would; prints one JSON report.

Usage: python_follow.py STUBS_DIR ADDRESS AUTHORIZATION STREAM_ID

The report says when (epoch ms, this machine's clock) the first data chunk arrived and when
stream_end did, and the sha256 of every payload byte, so a test can prove the chunks came live.
"""
import hashlib
import json
import sys
import time

stubs_dir, address, authorization, stream_id = sys.argv[1:5]
sys.path.insert(0, stubs_dir)

import grpc  # noqa: E402
from mentatlab.v1 import stream_pb2, stream_pb2_grpc  # noqa: E402

report = {"first_data_at_ms": None, "end_at_ms": None, "bytes": 0}
digest = hashlib.sha256()
with grpc.insecure_channel(address) as channel:
    streams = stream_pb2_grpc.StreamServiceStub(channel)
    key = (("authorization", authorization),)
    for event in streams.Subscribe(stream_pb2.SubscribeRequest(stream_id=stream_id, after_seq=0), metadata=key, timeout=60):
        kind = event.WhichOneof("event")
        if kind == "data":
            if report["first_data_at_ms"] is None:
                report["first_data_at_ms"] = int(time.time() * 1000)
            digest.update(event.data.data)
            report["bytes"] += len(event.data.data)
        elif kind == "end":
            report["end_at_ms"] = int(time.time() * 1000)
            break
        elif kind == "error":
            report["error"] = event.error.message
            break
report["sha256"] = digest.hexdigest()
print(json.dumps(report))
