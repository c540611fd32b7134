#!/bin/sh
# Vendor Apache ECharts into the dashboard's static files (no CDN at run time).
#   tools/vendor_echarts.sh 6.1.0
set -eu
version=${1:?usage: tools/vendor_echarts.sh VERSION}
here=$(cd "$(dirname "$0")/.." && pwd)
dest="$here/dashboards/static/vendor/echarts"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "echarts@$version" >/dev/null && tar xzf "echarts-$version.tgz")
cp "$tmp/package/dist/echarts.common.min.js" "$tmp/package/LICENSE" "$tmp/package/NOTICE" "$dest/"
echo "vendored echarts $version: sha256 $(sha256sum "$tmp/echarts-$version.tgz" | cut -d' ' -f1) (update README.md)"
