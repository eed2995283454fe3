#!/usr/bin/env bash
# Refreshes the documentation pages' vendored assets from their npm packages: each package is
# fetched at its pinned version with `npm pack` (the tarball alone, no dependencies, no install
# scripts), checked against its pinned sha512 integrity (the registry's `dist.integrity`),
# and only the files the pages load are copied, with the package's licence, into
# `<package>@<version>/` here. The gateway embeds them (gateway/src/openapi/assets.rs).
#
# To upgrade: change a version and its integrity (`npm view <package>@<version>
# dist.integrity`), run this script, change the version in assets.rs, and delete the old
# folder.
set -euo pipefail
cd "$(dirname "$0")"

# package version integrity files…
packages=(
  "swagger-ui-dist 5.35.0 sha512-U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ== swagger-ui-bundle.js swagger-ui.css LICENSE NOTICE"
  "redoc 2.5.4 sha512-M6jWhG1qoBnH6TFmzJnstyCZ87HmOY/UzDm78mHiYihEdlV/YcS9ogOo1NlElnJMeLsyxHFe2yFc4sNjHTrABQ== bundles/redoc.standalone.js bundles/redoc.standalone.js.LICENSE.txt LICENSE"
)

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for entry in "${packages[@]}"; do
  read -r name version integrity files <<<"$entry"
  tarball=$(npm pack --silent --pack-destination "$scratch" "$name@$version")
  actual="sha512-$(openssl dgst -sha512 -binary "$scratch/$tarball" | base64 -w0)"
  if [ "$actual" != "$integrity" ]; then
    echo "$name@$version: integrity $actual, expected $integrity" >&2
    exit 1
  fi
  mkdir -p "$scratch/$name"
  tar -xzf "$scratch/$tarball" -C "$scratch/$name"
  target="$name@$version"
  rm -rf "$target"
  mkdir -p "$target"
  for file in $files; do
    cp "$scratch/$name/package/$file" "$target/$(basename "$file")"
  done
  echo "$target: $(du -sh "$target" | cut -f1)"
done
