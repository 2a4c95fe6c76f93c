#!/bin/bash
# collect.sh WORKSPACE OUT: what a reviewer needs from a shard build, with
# every secret in the rendered configuration masked.
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
if [ -d "$ws/etc" ]; then
    for conf in "$ws"/etc/*; do
        [ -f "$conf" ] || continue
        # password = x, *_password = x, secret/token = x, and credentials in URLs.
        sed -E \
            -e 's/^([[:space:]]*[A-Za-z_]*(password|secret|token)[A-Za-z_]*[[:space:]]*=).*/\1 ****/' \
            -e 's#(://[^:/@[:space:]]+:)[^@[:space:]]+@#\1****@#g' \
            "$conf" > "$out/etc/$(basename "$conf")"
    done
fi
# phases.json (seconds per phase) comes with the efficiency report (shard_report).
chmod -R go-rwx "$out"
