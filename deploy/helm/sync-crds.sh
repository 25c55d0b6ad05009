#!/bin/sh
# Copies the generated CRDs (deploy/crds/*.yaml, from `npm run crds:generate`) into the chart.
# Run after regenerating the CRDs; deploy/helm/crds-sync.test.ts fails while the copies differ.
#
# The chart keeps them in files/crds/, not Helm's special crds/ directory: Helm installs crds/
# only on first install, never upgrades them and cannot switch them off with a value. Rendered
# by templates/crds.yaml instead, they follow `helm upgrade` and honour `crds.install`.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
source_dir="$here/../crds"
target_dir="$here/tether/files/crds"
mkdir -p "$target_dir"
rm -f "$target_dir"/*.yaml
for file in "$source_dir"/*.yaml; do
  cp "$file" "$target_dir/"
done
ls "$target_dir"
