#!/bin/bash
# Health probe: sends a Kafka ApiVersions (v0) request to --bootstrap-server HOST:PORT and
# succeeds only if the broker answers it without error (the tools jar is not in the image).
set -euo pipefail
[ "${1:-}" = "--bootstrap-server" ] || { echo "usage: $0 --bootstrap-server HOST:PORT" >&2; exit 2; }
host=${2%:*} port=${2##*:}
exec 3<>"/dev/tcp/$host/$port"
# size 16 | api_key 18 | version 0 | correlation id 1 | client id "health"
printf '\x00\x00\x00\x10\x00\x12\x00\x00\x00\x00\x00\x01\x00\x06health' >&3
answer=$(timeout 5 head -c 10 <&3 | od -An -tx1 | tr -d ' \n')
# size (any) | correlation id 1 | error code 0
[[ "$answer" =~ ^[0-9a-f]{8}000000010000$ ]] || { echo "no ApiVersions answer: $answer" >&2; exit 1; }
echo "$2 answers ApiVersions"
