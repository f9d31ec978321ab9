#!/usr/bin/env bash
# Refresh the browser libraries shipped in the package (scsp/static/vendor/) from the npm registry.
#
#   scripts/vendor_assets.sh            # the pinned versions below
#   UPLOT=1.6.32 SWAGGER_UI=5.35.0 scripts/vendor_assets.sh
#
# Needs npm (only here: the package, its tests and its pages never fetch anything at run time).
# Each library keeps its licence file next to it; VERSIONS records what was fetched and its
# integrity as npm reported it.
set -euo pipefail
cd "$(dirname "$0")/.."

UPLOT="${UPLOT:-1.6.32}"            # uPlot: the dashboard's time-series charts (MIT)
SWAGGER_UI="${SWAGGER_UI:-5.35.0}"  # swagger-ui-dist: the OpenAPI page at /schema (Apache-2.0)

dest=scsp/static/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fetch() {  # fetch NAME VERSION -> unpacks into $work/NAME, appends to $work/VERSIONS
    local name=$1 version=$2
    (cd "$work" && npm pack --silent --json "$name@$version" > "$name.json")
    mkdir -p "$work/$name"
    tar -xzf "$work/$name-$version.tgz" -C "$work/$name" --strip-components=1
    python3 - "$work/$name.json" >> "$work/VERSIONS" <<'PY'
import json, sys
for item in json.load(open(sys.argv[1])):
    print(f"{item['name']} {item['version']} {item['integrity']}")
PY
}

fetch uplot "$UPLOT"
fetch swagger-ui-dist "$SWAGGER_UI"

rm -rf "$dest"
mkdir -p "$dest/uplot" "$dest/swagger-ui"
cp "$work/uplot/dist/uPlot.iife.min.js" "$work/uplot/dist/uPlot.min.css" "$work/uplot/LICENSE" "$dest/uplot/"
for f in swagger-ui-bundle.js swagger-ui.css swagger-ui-standalone-preset.js LICENSE NOTICE; do
    if [ -f "$work/swagger-ui-dist/$f" ]; then cp "$work/swagger-ui-dist/$f" "$dest/swagger-ui/"; fi
done
# The bundles point at their source maps, which are not shipped: drop the reference so browsers
# do not ask for them.
sed -i -e '/^\/\/# sourceMappingURL=/d' -e 's|/\*# sourceMappingURL=[^*]*\*/||' "$dest"/swagger-ui/*.js "$dest"/swagger-ui/*.css
cp "$work/VERSIONS" "$dest/VERSIONS"
echo "vendored into $dest:"
cat "$dest/VERSIONS"
