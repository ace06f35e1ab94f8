"""Serving the pushed model: TF Serving's directory rules, its gRPC and REST APIs, rollback.

`layout` (version directories, atomic publish, rollback; stdlib only), `model` (one loaded
version and TF Serving's request semantics), `repository` (which version is served),
`grpc_server`, `rest`, and the `python -m serving` command line.
"""
