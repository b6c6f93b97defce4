"""The gRPC layer: thin servicers, proto <-> model conversion, error mapping, the server."""
