#!/usr/bin/env bash
# Install what the test suite needs beyond PyPI: Debian packages (as root) and the official
# MJML compiler from npm. Idempotent and quick when everything is already there.
# Packages are listed in scripts/apt-packages.txt (one per line, # comments allowed).
set -euo pipefail
cd "$(dirname "$0")/.."

wanted=$(grep -v '^\s*#' scripts/apt-packages.txt | awk 'NF {print $1}')
missing=()
for pkg in $wanted; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "system-deps: missing Debian packages ${missing[*]}; install them as root" >&2
    exit 1
  fi
  # Postfix asks questions on install: answer them ahead (local only, no relaying anywhere).
  echo "postfix postfix/main_mailer_type select Local only" | debconf-set-selections
  echo "postfix postfix/mailname string kzmail.test" | debconf-set-selections
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The official MJML compiler, for the strict validation test (kept out of the repo).
if [ -f scripts/npm-packages.txt ] && command -v npm >/dev/null; then
  mkdir -p .cache/npm
  for pkg in $(grep -v '^\s*#' scripts/npm-packages.txt); do
    name=${pkg%@*}
    [ -d ".cache/npm/node_modules/$name" ] || npm install --silent --prefix .cache/npm "$pkg" >/dev/null
  done
fi
