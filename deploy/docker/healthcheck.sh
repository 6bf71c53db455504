#!/bin/bash
# The image's HEALTHCHECK: GET /healthz on Portcullis's listen port, with bash alone (the
# runtime image carries no curl or wget). /healthz answers 200 as soon as the process serves;
# readiness (IdP metadata and keys loaded) is /readyz, which Kubernetes probes itself.
set -euo pipefail
listen="${PORTCULLIS_LISTEN:-0.0.0.0:8080}"
port="${listen##*:}"
exec 3<>"/dev/tcp/127.0.0.1/${port}"
printf 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
IFS= read -r -t 5 status <&3
[[ "$status" == "HTTP/1.1 200 "* ]]
