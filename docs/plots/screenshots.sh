#!/usr/bin/env bash
# Screenshots of `dvc plots show`, as a browser draws them, for the docs (docs/plots/*.png).
#
#   docs/plots/screenshots.sh            # the two pictures on Getting started, into docs/plots/
#   docs/plots/screenshots.sh --all      # every kind of plot, one PNG each, into $OUT
#                                        # (default: a temporary folder; for a look, not git)
#
# Renders each plot with `dvc plots show TARGET -o DIR`, swaps the CDN URLs that DVC's HTML
# names for local copies of the same vega, vega-lite and vega-embed versions (installed with
# npm into $VEGA_DIR, outside the repository), and photographs the page with headless
# Chromium. Needs chromium (Debian: `apt-get install chromium`), npm and the project's venv;
# `make test` and CI need none of them. Environment: OUT, VEGA_DIR, DVC, CHROMIUM, WORK.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DVC=${DVC:-$ROOT/.venv/bin/dvc}
CHROMIUM=${CHROMIUM:-chromium}
VEGA_DIR=${VEGA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ds-prior-pipeline/vega}
WORK=${WORK:-$(mktemp -d)}
if [[ ${1:-} == --all ]]; then OUT=${OUT:-$WORK/shots}; else OUT=${OUT:-$ROOT/docs/plots}; fi
mkdir -p "$OUT" "$WORK"

# name  target (a plot id of dvc.yaml, or a plot file)  window WIDTHxHEIGHT
README_SHOTS=(
  "dev_a_precision dev_a_precision 640x455"
  "precision_recall reports/evaluate_plots/precision_recall.json 640x455"
)
ALL_SHOTS=(
  "${README_SHOTS[@]}"
  "cost reports/evaluate_plots/cost.json 640x480"
  "roc reports/evaluate_plots/roc.json 640x480"
  "calibration reports/evaluate_plots/calibration.json 640x480"
  "confusion reports/evaluate_plots/confusion.json 640x380"
  "prior_sensitivity reports/evaluate_plots/prior_sensitivity.json 640x455"
  "label_free reports/evaluate_plots/label_free.json 640x455"
  "monitor_prior reports/monitor/prior.json 700x520"
  "monitor_precision reports/monitor/precision.json 700x520"
  "monitor_alerts reports/monitor/alerts.json 700x480"
  "train_dev_a_prior reports/train/plots/metrics/dev_a/prior 640x1900"
)
shots=("${README_SHOTS[@]}")
[[ ${1:-} == --all ]] && shots=("${ALL_SHOTS[@]}")

cd "$ROOT"
# The script URLs DVC writes, e.g. https://cdn.jsdelivr.net/npm/vega-lite@5.2.0
"$DVC" plots show dev_a_precision -o "$WORK/probe" >/dev/null
mapfile -t urls < <(grep -o 'https://cdn.jsdelivr.net/npm/[a-z-]*@[0-9.]*' "$WORK/probe/index.html")
packages=()
for url in "${urls[@]}"; do packages+=("${url##*/npm/}"); done
if ! (cd "$VEGA_DIR" 2>/dev/null && npm ls "${packages[@]}" >/dev/null 2>&1); then
  mkdir -p "$VEGA_DIR"
  # --legacy-peer-deps: DVC's pins disagree (vega-lite 5.2.0 asks for vega >= 5.21)
  npm install --prefix "$VEGA_DIR" --no-audit --no-fund --legacy-peer-deps "${packages[@]}" >/dev/null
fi

for shot in "${shots[@]}"; do
  read -r name target size <<<"$shot"
  dir="$WORK/$name"
  rm -rf "$dir"
  "$DVC" plots show "$target" -o "$dir" >/dev/null
  for url in "${urls[@]}"; do
    package=${url##*/npm/}
    package=${package%@*}
    cp "$VEGA_DIR/node_modules/$package/build/$package.min.js" "$dir/"
    sed -i "s#$url\"#$package.min.js\"#" "$dir/index.html"
  done
  # a photograph has no use for vega-embed's "..." menu
  sed -i 's#</head>#<style>.vega-embed summary { display: none; }</style></head>#' "$dir/index.html"
  if grep -q 'cdn.jsdelivr' "$dir/index.html"; then
    echo "error: $dir/index.html still names a CDN script" >&2
    exit 1
  fi
  "$CHROMIUM" --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --force-device-scale-factor=1 --window-size="${size/x/,}" --virtual-time-budget=10000 \
    --screenshot="$OUT/$name.png" "file://$dir/index.html" 2>/dev/null
  echo "$OUT/$name.png"
done
