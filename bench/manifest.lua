-- wrk script for the manifest workload: `wrk ... -s manifest.lua <url> -- GET|HEAD`.
-- Sends the method with the Accept list a docker/OCI client sends, counts non-2xx answers,
-- and prints one JSON line (requests, seconds, p50_us, p99_us, bad) for bench/workloads.py.

function init(args)
  wrk.method = args[1] or "GET"
  wrk.headers["Accept"] = "application/vnd.oci.image.manifest.v1+json, "
    .. "application/vnd.oci.image.index.v1+json, "
    .. "application/vnd.docker.distribution.manifest.v2+json, "
    .. "application/vnd.docker.distribution.manifest.list.v2+json"
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %f, "p50_us": %f, "p99_us": %f, "bad": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
