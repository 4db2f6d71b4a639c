#!/usr/bin/env bash
# Installs a real VS Code for tests/editors/test_vscode_browser.py: code-server (VS Code for
# the web, run by Node) and playwright-core, which drives Debian's Chromium (no browser
# download). Idempotent: a second run checks versions and returns in about a second.
#
#   editors/vscode/test/browser/install.sh [FOLDER]    (default: $QWEN_LSP_VSCODE_DIR or
#                                                       ~/.cache/qwen-lsp/vscode-test)
#
# Needs root (or the packages already there) for apt: chromium, ripgrep, libkrb5-dev (to
# build code-server's native modules). code-server 4.100.3 (VS Code 1.100.3) is the last
# release that accepts Node 20. Its ripgrep postinstall downloads a binary from GitHub;
# the cache it looks in first is seeded with Debian's rg, so nothing is downloaded but npm
# packages.
set -euo pipefail

CODE_SERVER=4.100.3
PLAYWRIGHT=1.65.2
dir="${1:-${QWEN_LSP_VSCODE_DIR:-$HOME/.cache/qwen-lsp/vscode-test}}"
stamp="$dir/installed-$CODE_SERVER-$PLAYWRIGHT"

if [ -f "$stamp" ] && command -v chromium >/dev/null && command -v rg >/dev/null; then
  exit 0
fi

missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v rg >/dev/null || missing+=(ripgrep)
dpkg -s libkrb5-dev >/dev/null 2>&1 || missing+=(libkrb5-dev)
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" != 20 ]; then
  echo "code-server $CODE_SERVER needs Node 20, this is Node $node_major" >&2
  exit 1
fi

mkdir -p "$dir/tmp"
# @vscode/ripgrep's postinstall uses $TMPDIR/vscode-ripgrep-cache-<its version>/ripgrep-
# <tag>-<target>.tar.gz when it exists: put Debian's rg there for the version npm will pick.
export TMPDIR="$dir/tmp"
# The version code-server's VS Code pins (lib/vscode/npm-shrinkwrap.json).
pack="$(cd "$TMPDIR" && npm pack --silent "code-server@$CODE_SERVER")"
rg_version="$(tar xzf "$TMPDIR/$pack" package/lib/vscode/npm-shrinkwrap.json -O |
  node -p 'JSON.parse(require("fs").readFileSync(0)).packages["node_modules/@vscode/ripgrep"].version')"
rm -f "$TMPDIR/$pack"
rg_pack="$(cd "$TMPDIR" && npm pack --silent "@vscode/ripgrep@$rg_version")"
# Releases from 1.18 on ship rg as npm packages; older ones download it in a postinstall.
tag="$(tar xzf "$TMPDIR/$rg_pack" package/lib/postinstall.js -O 2>/dev/null |
  sed -n "s/^const VERSION = '\(.*\)';/\1/p" || true)"
rm -f "$TMPDIR/$rg_pack"
if [ -n "$tag" ]; then
  case "$(uname -m)" in
    x86_64) target=x86_64-unknown-linux-musl ;;
    aarch64) target=aarch64-unknown-linux-musl ;;
    *) echo "no ripgrep target for $(uname -m)" >&2; exit 1 ;;
  esac
  cache="$TMPDIR/vscode-ripgrep-cache-$rg_version"
  mkdir -p "$cache/rg"
  cp "$(command -v rg)" "$cache/rg/rg"
  tar czf "$cache/ripgrep-$tag-$target.tar.gz" -C "$cache/rg" rg
fi

# root runs npm's lifecycle scripts only with unsafe-perm (code-server's postinstall checks).
npm_config_yes=true npm_config_unsafe_perm=true npm install --prefix "$dir" --no-audit \
  --no-fund --no-save --loglevel=error \
  "code-server@$CODE_SERVER" "playwright-core@$PLAYWRIGHT"
"$dir/node_modules/.bin/code-server" --version >/dev/null
touch "$stamp"
