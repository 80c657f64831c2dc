#!/usr/bin/env bash
# Screenshots of the built docs site's main pages, as a browser draws them, for a look
# before a docs change lands (issue #28: pages are looked at, not only built).
#
#   docs/site-screenshots.sh               # builds the site, PNGs into a temporary folder
#   OUT=/tmp/shots docs/site-screenshots.sh
#
# Needs chromium (Debian: `apt-get install chromium`) and the project's venv; `make test`
# and CI need neither. Environment: OUT, CHROMIUM, WIDTH, HEIGHT.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CHROMIUM=${CHROMIUM:-chromium}
OUT=${OUT:-$(mktemp -d)}
WIDTH=${WIDTH:-1280}
HEIGHT=${HEIGHT:-2000}
PAGES=(index getting-started own-data evaluation production benchmarks scale reference/metrics
       reference/summary troubleshooting)

cd "$ROOT"
"$ROOT/.venv/bin/mkdocs" build --strict --quiet
mkdir -p "$OUT"
for page in "${PAGES[@]}"; do
  file=site/$page/index.html
  [[ $page == index ]] && file=site/index.html
  "$CHROMIUM" --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --window-size="$WIDTH,$HEIGHT" --screenshot="$OUT/${page//\//_}.png" "file://$ROOT/$file" \
    2>/dev/null
done
echo "screenshots in $OUT"
