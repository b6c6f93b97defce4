#!/usr/bin/env bash
# Regenerates the Python code of proto/termdesk/v1 into service/termdesk/v1 (never edit it),
# and the descriptor set Envoy's gRPC-JSON transcoder reads, deploy/envoy/termdesk.pb.
# Needs grpcio-tools and mypy-protobuf (pinned in pyproject's dev extra, so every run
# writes the same code); mypy-protobuf writes the typed stubs (.pyi) of both modules.
# google/api and google/rpc come from proto/google (vendored, see its README).
set -euo pipefail
cd "$(dirname "$0")/.."
out=service
find "$out/termdesk/v1" -name '*_pb2*.py*' -delete 2>/dev/null || true
bin=$(dirname "$(command -v python)")
python -m grpc_tools.protoc -I proto \
  --plugin=protoc-gen-mypy="$bin/protoc-gen-mypy" \
  --plugin=protoc-gen-mypy_grpc="$bin/protoc-gen-mypy_grpc" \
  --python_out="$out" --grpc_python_out="$out" \
  --mypy_out="$out" --mypy_grpc_out="$out" \
  proto/termdesk/v1/*.proto
# Every type the services use, and google.rpc's error details, so the transcoder can print
# a failed call's google.rpc.BadRequest as JSON. No source info: the file stays small.
python -m grpc_tools.protoc -I proto --include_imports \
  --descriptor_set_out=deploy/envoy/termdesk.pb \
  proto/termdesk/v1/*.proto proto/google/rpc/error_details.proto
