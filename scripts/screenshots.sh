#!/usr/bin/env bash
# Regenerates the README's screenshots (docs/screenshots/*.png): runs the browser test of the
# admin screens, which saves them when REGISTRY_SCREENSHOTS names a folder. Needs Debian's
# chromium and chromium-driver (as the tests do).
set -euo pipefail
cd "$(dirname "$0")/.."
REGISTRY_SCREENSHOTS="$PWD/docs/screenshots" cargo test -p registry-tests --test api -- \
  --exact browser::an_administrator_works_through_the_guide_in_a_browser::sqlite
ls -l docs/screenshots
