#!/bin/sh
# Rebuilds src/http/pages/vendor/jssip.min.js: the pages' SIP-over-WebSocket
# stack, JsSIP from npm (version pinned in tests/pages/package.json), bundled
# unmodified into one script the engine embeds (no CDN: the pages work
# offline and under a strict Content-Security-Policy).
set -eu
cd "$(dirname "$0")/../tests/pages"
npm ci --no-audit --no-fund >/dev/null
v=$(node -p 'require("jssip/package.json").version')
echo 'import JsSIP from "jssip"; window.JsSIP = JsSIP;' > jssip-entry.mjs
npx esbuild jssip-entry.mjs --bundle --minify --format=iife --legal-comments=none \
  "--banner:js=/* JsSIP $v (https://jssip.net), MIT licence, Copyright (c) 2012-2015 José Luis Millán, Versatica; see JSSIP-LICENSE.md; bundled unmodified with esbuild by scripts/vendor-jssip.sh. */" \
  --outfile=../../src/http/pages/vendor/jssip.min.js --log-level=warning
rm jssip-entry.mjs
cp node_modules/jssip/LICENSE.md ../../src/http/pages/vendor/JSSIP-LICENSE.md
echo "JsSIP $v bundled"
