#!/bin/bash
# tempest's selection, then its stream, results and page from stestr's
# repository whatever the run's status (the results say what failed).
# Run in tempest's workspace, by the role (ansible.builtin.script) and by
# ./shard bench (shard_jobs/bench_tempest.py), with:
#   VENV     tempest's virtualenv
#   LOGS     where the run's files go
#   REGEX    the tests to run; EXCLUDE those to leave out (may be empty)
#   WORKERS  stestr's workers
set -o pipefail -o nounset
mkdir -p "$LOGS"
cp etc/tempest.conf "$LOGS/tempest.conf"
"$VENV/bin/tempest" run --regex "$REGEX" ${EXCLUDE:+--exclude-regex "$EXCLUDE"} \
  --concurrency "$WORKERS" > "$LOGS/tempest-run.txt" 2>&1
echo $? > "$LOGS/tempest-exit-status"
if ! "$VENV/bin/stestr" last --subunit > "$LOGS/tempest.subunit" 2> /dev/null; then
  echo "tempest did not run: $(tail -n 3 "$LOGS/tempest-run.txt" | tr '\n' ' ')" >&2
  exit 1
fi
"$VENV/bin/subunit2csv" < "$LOGS/tempest.subunit" > "$LOGS/results.csv"
"$VENV/bin/subunit2html" "$LOGS/tempest.subunit" "$LOGS/tempest.html" > /dev/null
