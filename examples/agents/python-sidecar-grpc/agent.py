#!/usr/bin/python3
"""A MentatLab agent in Python that talks to its sidecar over gRPC (the SidecarService).

It reads its text input, streams the words live on the `words` stream pin, reports progress and a
heartbeat, and publishes the text upper-cased and its letter counts. Run it under the sidecar:
`agent-sidecar -- /usr/bin/python3 examples/agents/python-sidecar-grpc/agent.py`.
"""
import collections
import os
import sys

# Run from a read-only image or a source tree alike: no __pycache__ beside the agent.
sys.dont_write_bytecode = True

import grpc  # noqa: E402

from stubs import ensure_stubs  # noqa: E402

ensure_stubs()
from mentatlab.v1 import common_pb2, sidecar_pb2, sidecar_pb2_grpc  # noqa: E402  (generated above)


def channel_target(address):
    """The sidecar listens on a unix socket path or on 127.0.0.1:<port>."""
    return address if address.startswith("127.0.0.1:") or address.startswith("localhost:") else f"unix:{address}"


def main():
    address = os.environ["MENTATLAB_SIDECAR_ADDRESS"]
    metadata = [("authorization", f"Bearer {os.environ['MENTATLAB_SIDECAR_TOKEN']}")]
    with grpc.insecure_channel(channel_target(address)) as channel:
        sidecar = sidecar_pb2_grpc.SidecarServiceStub(channel)

        def report(**event):
            answer = sidecar.Report(sidecar_pb2.ReportRequest(event=common_pb2.AgentEvent(**event)), metadata=metadata)
            if answer.cancelled:
                sys.exit("the run was cancelled")

        inputs = sidecar.GetInputs(sidecar_pb2.GetInputsRequest(), metadata=metadata)
        text = inputs.inputs["text"].text if "text" in inputs.inputs else ""
        if not text.strip():
            report(log=common_pb2.LogEvent(level=common_pb2.LOG_LEVEL_ERROR, message="input pin 'text' is empty"))
            return 1
        report(heartbeat=common_pb2.HeartbeatEvent())

        opened = sidecar.OpenOutputStream(
            sidecar_pb2.OpenOutputStreamRequest(pin="words", mime_type="text/plain", payload_type=common_pb2.PIN_TYPE_TEXT),
            metadata=metadata,
        )
        stream_id = opened.stream.stream_id
        words = text.split()

        def chunks():
            for word in words:
                yield sidecar_pb2.WriteOutputStreamRequest(stream_id=stream_id, data=(word + "\n").encode("utf-8"))

        written = sidecar.WriteOutputStream(chunks(), metadata=metadata)
        relayed = sidecar.CloseOutputStream(sidecar_pb2.CloseOutputStreamRequest(stream_id=stream_id), metadata=metadata)
        report(progress=common_pb2.ProgressEvent(percent=50, message=f"streamed {written.chunks_written} words"))

        letters = collections.Counter(c for c in text.lower() if c.isalpha())
        sidecar.PutOutput(sidecar_pb2.PutOutputRequest(pin="upper", text=text.upper()), metadata=metadata)
        counts = sidecar_pb2.PutOutputRequest(pin="letters")
        counts.json.struct_value.update({letter: n for letter, n in sorted(letters.items())})
        sidecar.PutOutput(counts, metadata=metadata)
        report(metric=common_pb2.MetricEvent(name="words_relayed", value=relayed.chunks_relayed))
        return 0


if __name__ == "__main__":
    sys.exit(main())
