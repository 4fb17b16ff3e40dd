"""Calls the mesh with Debian's grpcio through stubs generated at test time; prints one JSON report.

Usage: python_client.py STUBS_DIR ADDRESS AUTHORIZATION REF_ID
"""
import json
import sys

stubs_dir, address, authorization, ref_id = sys.argv[1:5]
sys.path.insert(0, stubs_dir)

import grpc  # noqa: E402
import health_pb2  # noqa: E402
import health_pb2_grpc  # noqa: E402
from mentatlab.v1 import storage_pb2, storage_pb2_grpc  # noqa: E402

report = {}
with grpc.insecure_channel(address) as channel:
    health = health_pb2_grpc.HealthStub(channel)
    status = health_pb2.HealthCheckResponse.ServingStatus.Name
    report["check"] = status(health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status)
    watch = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=10)
    report["watch_first"] = status(next(watch).status)
    watch.cancel()

    storage = storage_pb2_grpc.StorageServiceStub(channel)
    key = (("authorization", authorization),)
    usage = storage.GetUsage(storage_pb2.GetUsageRequest(), metadata=key, timeout=10)
    report["usage"] = {"userLimitBytes": str(usage.user_limit_bytes), "workspaceLimitBytes": str(usage.workspace_limit_bytes)}
    text = b""
    for part in storage.Download(storage_pb2.DownloadRequest(ref_id=ref_id), metadata=key, timeout=10):
        if part.WhichOneof("part") == "header":
            report["sha256"] = part.header.sha256
        else:
            text += part.chunk.data
    report["text"] = text.decode()
    try:
        storage.GetUsage(storage_pb2.GetUsageRequest(), timeout=10)
        report["without_key"] = "OK"
    except grpc.RpcError as error:
        report["without_key"] = error.code().name
        report["without_key_message"] = error.details()

print(json.dumps(report))
