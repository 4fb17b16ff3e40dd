"""Generates Python stubs for the SidecarService from the repository's protos on first use.

Debian's python3-grpcio-tools bundles an old protoc (3.5) whose output still works with the packaged
protobuf runtime. Stubs land in a cache directory keyed by the protos' content, so they are generated
once per contract version and never committed.
"""
import hashlib
import os
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[3]
PROTOS = ["mentatlab/v1/sidecar.proto", "mentatlab/v1/common.proto", "mentatlab/v1/options.proto", "buf/validate/validate.proto"]
ROOTS = [REPO / "proto", REPO / "proto-deps"]


def _source(name):
    for root in ROOTS:
        if (root / name).exists():
            return root / name
    raise FileNotFoundError(name)


def stubs_dir():
    digest = hashlib.sha256(b"".join(_source(name).read_bytes() for name in PROTOS)).hexdigest()[:16]
    base = os.environ.get("MENTATLAB_PYTHON_STUBS") or os.path.join(os.path.expanduser("~"), ".cache", "mentatlab", "python-stubs")
    return pathlib.Path(base) / digest


def ensure_stubs():
    """Puts generated stubs on sys.path, generating them first if needed; returns their directory."""
    target = stubs_dir()
    if not (target / "mentatlab" / "v1" / "sidecar_pb2_grpc.py").exists():
        from grpc_tools import protoc
        import grpc_tools

        partial = target.with_name(target.name + f".partial-{os.getpid()}")
        partial.mkdir(parents=True, exist_ok=True)
        well_known = pathlib.Path(grpc_tools.__file__).parent / "_proto"
        args = ["protoc", *[f"-I{root}" for root in ROOTS], f"-I{well_known}", f"--python_out={partial}", f"--grpc_python_out={partial}", *PROTOS]
        if protoc.main(args) != 0:
            raise RuntimeError("protoc failed to generate the SidecarService stubs")
        try:
            partial.rename(target)
        except OSError:
            # Another agent generated them at the same time; theirs are as good as ours.
            pass
    sys.path.insert(0, str(target))
    return target
