"""Benchmark of moorage against CNCF distribution on the same OCI workloads.

Run ``python -m bench --help`` from the repository root; `bench.run` has the command line,
`bench.servers` the server processes, `bench.workloads` the workloads, `bench.oci_client` the
`/v2/` client and `bench.report` the tables and ``docs/benchmarks.md``.
"""
