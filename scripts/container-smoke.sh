#!/usr/bin/env bash
# Runs what the Dockerfile runs, here (no Docker engine on these machines): the production build,
# production dependencies only, NODE_ENV=production, secrets from files, the image's HEALTHCHECK
# command, then SIGTERM. Needs PostgreSQL and Redis on 127.0.0.1. Loopback only; cleans up after.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
node="$root/node_modules/.bin/node"
work=$(mktemp -d)
db="wob_smoke_$RANDOM$RANDOM"
port=$((20000 + RANDOM % 20000))
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  psql -q -h 127.0.0.1 -U postgres -d test -c "drop database if exists $db" >/dev/null 2>&1 || true
  redis-cli -h 127.0.0.1 --scan --pattern 'wob-smoke:*' | xargs -r redis-cli -h 127.0.0.1 del >/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== build stage: npm run build"
npm run -s build
echo "== runtime stage: production dependencies only"
mkdir -p "$work/app" "$work/secrets"
cp -r package.json package-lock.json patches "$work/app/"
(cd "$work/app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error \
  && "$node" node_modules/patch-package/index.js --error-on-fail >/dev/null)
cp -r dist views config "$work/app/"

echo "== secrets as files"
"$node" -e '
  const { generateKeyPairSync, randomBytes, randomUUID } = require("node:crypto");
  const fs = require("node:fs"); const dir = process.argv[1];
  const jwk = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" });
  fs.writeFileSync(dir + "/oidc_jwks.json", JSON.stringify({ keys: [{ ...jwk, alg: "RS256", use: "sig", kid: randomUUID() }] }));
  fs.writeFileSync(dir + "/oidc_cookie_key", randomBytes(32).toString("base64url"));
  fs.writeFileSync(dir + "/wechat_website_secret", randomBytes(16).toString("hex"));
  fs.writeFileSync(dir + "/rp_secret", randomBytes(24).toString("base64url"));
' "$work/secrets"
cat > "$work/app/config/production.yaml" <<YAML
trustProxy: true
behindTlsProxy: true
dataDir: $work/data
storage: { redisKeyPrefix: "wob-smoke:" }
wechat:
  apps:
    - { kind: website, appid: wx1111111111111111, name: Smoke, secret: { file: $work/secrets/wechat_website_secret } }
oidc:
  jwks: { file: $work/secrets/oidc_jwks.json }
  cookieKeys: [{ file: $work/secrets/oidc_cookie_key }]
clients:
  - client_id: smoke-rp
    client_secret: { file: $work/secrets/rp_secret }
    redirect_uris: [https://rp.example.test/callback]
YAML
psql -q -h 127.0.0.1 -U postgres -d test -c "create database $db" >/dev/null

echo "== the image's command: node --enable-source-maps dist/src/main.js"
cd "$work/app"
env -i PATH="$(dirname "$node"):/usr/bin:/bin" NODE_ENV=production PORT=$port CONFIG_FILE="$work/app/config/production.yaml" \
  ISSUER=https://login.example.test DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db" REDIS_URL=redis://127.0.0.1:6379 \
  "$node" --enable-source-maps dist/src/main.js > "$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done

echo "== the image's HEALTHCHECK"
PORT=$port "$node" -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
curl -fs "http://127.0.0.1:$port/readyz"; echo
issuer=$(curl -fs -H 'X-Forwarded-Proto: https' -H 'X-Forwarded-Host: login.example.test' "http://127.0.0.1:$port/.well-known/openid-configuration" | "$node" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).issuer))')
[ "$issuer" = "https://login.example.test" ] || { echo "unexpected issuer: $issuer"; exit 1; }
echo "discovery issuer: $issuer"
if grep -q "$(cat "$work/secrets/wechat_website_secret")\|$(cat "$work/secrets/rp_secret")\|$(cat "$work/secrets/oidc_cookie_key")" "$work/server.log"; then
  echo "a secret reached the log"; exit 1
fi

echo "== SIGTERM"
kill -TERM "$pid"
wait "$pid" && status=0 || status=$?
pid=""
[ "$status" = 0 ] || { echo "exit status $status"; cat "$work/server.log"; exit 1; }
echo "container smoke: ok (production build, production dependencies only, clean shutdown)"
