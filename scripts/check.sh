#!/usr/bin/env bash
# Static checks CI runs before the tests: contracts lint-clean, formatted and not broken against the
# released image, generated code up to date, TypeScript types sound, the package map's import rules
# and no import cycles (eslint), the code formatted (prettier).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
node scripts/check-node.mjs
node scripts/vendor-protos.mjs

echo "== buf lint"; buf lint
echo "== buf format"; buf format proto --exit-code --diff
echo "== buf breaking (against contracts/released.binpb)"
buf breaking proto --against contracts/released.binpb --exclude-imports

echo "== generated code is current"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
buf generate --output "$tmp"
if ! diff -r "$tmp/gen" gen >/dev/null; then
  diff -r "$tmp/gen" gen | head -20
  echo "gen/ is stale: run 'npm run generate' and commit the result" >&2
  exit 1
fi

echo "== tsc --noEmit"; tsc --noEmit -p tsconfig.json
echo "== eslint (import boundaries, no cycles)"; eslint --max-warnings 0 .
echo "== prettier --check"; prettier --check --log-level warn .
echo "checks passed"
