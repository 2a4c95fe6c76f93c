#!/bin/bash
# collect.sh WORKSPACE OUT: what a reviewer needs from a shard build. The
# configuration is the copy deploy rendered with every secret masked
# (etc-masked/); the real one (etc/) never leaves the node.
set -eu
ws=$1
out=$2
rm -rf "$out"
mkdir -p "$out/etc"
[ -d "$ws/log" ] && cp -r "$ws/log/." "$out/"
for f in "$ws"/pip-freeze-*.txt "$ws"/source-*.txt "$ws"/result.json "$ws"/upgrade.json \
         "$ws"/phases.jsonl; do
    [ -f "$f" ] && cp "$f" "$out/"
done
[ -d "$ws/etc-masked" ] && cp -r "$ws/etc-masked/." "$out/etc/"
# The rolling upgrade's sampler: every call it made, and its summary.
if [ -d "$ws/rolling" ]; then
    mkdir -p "$out/rolling"
    for f in "$ws"/rolling/samples.jsonl "$ws"/rolling/summary.json; do
        [ -f "$f" ] && cp "$f" "$out/rolling/"
    done
fi
# phases.json (seconds per phase) comes with the efficiency report (shard_report).
chmod -R go-rwx "$out"
