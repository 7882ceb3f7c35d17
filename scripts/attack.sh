#!/usr/bin/env bash
# The security review's thirteen cases (SECURITY.md, "Promises from the security review"):
# runs the test of each — the attack itself, against the service built as `serve` builds it,
# on PostgreSQL and SQLite where the case has a database — and prints one line per case.
# Exit 0 when every attack fails as promised.
set -uo pipefail
cd "$(dirname "$0")/.."

cases=(
  "01|YAML/JSON amplification refused by bytes and depth (API and CLI)|attacks::case_01_"
  "02|at most two secrets valid per client|attacks::case_02_"
  "03|a snapshot edited in the database has no effect, and is reported|attacks::case_03_"
  "04|--env substitutes only allowed variables|attacks::case_04_"
  "05|a reader that stops frees its export place|exports::tests::a_reader_that_"
  "06|starting a sign-in writes nothing; next capped|sign_in::a_flood_of_sign_ins_"
  "07|the generated admin token never goes to a log line|first_start::without_a_terminal_"
  "08|files the service makes are its owner's only|attacks::case_08_"
  "09|ids shadowed by routes cannot be registered|attacks::case_09_"
  "10|no field can forge a log line|logging::tests::a_field_with_a_newline_"
  "11|a JWKS outage does not refuse every token|attacks::case_11_"
  "12|a replayed plan cannot bring back a deleted client|attacks::case_12_"
  "13|no role without a mapping; roles checked every token lifetime|attacks::case_13_"
)

log=$(mktemp)
trap 'rm -f "$log"' EXIT
{
  cargo test -p registry-api --lib -- logging::tests exports::tests 2>&1
  cargo test -p registry-tests --test api -- attacks:: sign_in::a_flood first_start::without 2>&1
} >"$log"

failed=0
for case in "${cases[@]}"; do
  IFS='|' read -r number what pattern <<<"$case"
  results=$(grep -E "^test ${pattern}" "$log" | sed -E 's/.* \.\.\. //')
  total=$(printf '%s\n' "$results" | grep -c . || true)
  passed=$(printf '%s\n' "$results" | grep -c '^ok$' || true)
  if [ "$total" -gt 0 ] && [ "$total" = "$passed" ]; then
    printf 'case %s  refused  %s (%s test%s)\n' "$number" "$what" "$total" "$([ "$total" = 1 ] || echo s)"
  else
    printf 'case %s  OPEN     %s (%s of %s tests pass)\n' "$number" "$what" "$passed" "$total"
    failed=1
  fi
done
if [ "$failed" = 1 ]; then
  echo "Some attacks were not refused; the test output:"
  cat "$log"
fi
exit "$failed"
