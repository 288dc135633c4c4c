#!/usr/bin/env bash
# deploy.sh — deploys IMPO's backend functions to Google Cloud (Cloud
# Functions 2nd gen) from this checkout, and prepares the project once.
#
#   ./deploy.sh [--dry-run] [--settings FILE] setup
#   ./deploy.sh [--dry-run] [--settings FILE] [login|gettoken|validate|validate-http ...]
#
# With no function named, all four are deployed. Settings come from the
# environment, or from a settings file (default ./deploy.env if present;
# see deploy.env.example). --dry-run prints every command, exactly, and runs
# none. A missing setting stops the script before anything runs.
set -euo pipefail

usage() {
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

dry_run=false
settings=""
targets=()
while (($#)); do
  case "$1" in
    --dry-run) dry_run=true ;;
    --settings) settings="${2:?--settings needs a file}"; shift ;;
    --settings=*) settings="${1#--settings=}" ;;
    -h | --help) usage 0 ;;
    -*) echo "deploy.sh: unknown option $1" >&2; usage 2 >&2 ;;
    *) targets+=("$1") ;;
  esac
  shift
done

cd "$(dirname "$0")"
if [[ -z "$settings" && -f deploy.env ]]; then
  settings=deploy.env
fi
if [[ -n "$settings" ]]; then
  [[ -f "$settings" ]] || { echo "deploy.sh: settings file $settings not found" >&2; exit 2; }
  # shellcheck source=/dev/null # the operator's settings file
  set -a && . "$settings" && set +a
fi

# --- settings ---------------------------------------------------------------
missing=()
require() {
  local name
  for name in "$@"; do
    [[ -n "${!name:-}" ]] || missing+=("$name")
  done
}
require PROJECT REGION
: "${SECRETS_MODE:=api}"                 # api (Secret Manager API) | mount (--set-secrets files)
: "${DOCS_TOPIC:=documentos}"           # the pipeline publishes documents here
: "${VALID_TOPIC:=documentos-validos}"
: "${INVALID_TOPIC:=documentos-invalidos}"
: "${GETTOKEN_SOURCE:=adc}"             # adc | impersonate:<email> | key
: "${GETTOKEN_POLICY_FILE:=}"           # local file with the gettoken policy (JSON)
: "${SESSION_ISSUER:=impo-copetes-login}"
: "${SESSION_AUDIENCE:=impo-copetes-backend}"
: "${SESSION_TTL:=1h}"
: "${CORS_ALLOWED_ORIGINS:=}"
: "${LOGIN_URL:=}"                       # login's URL: the others then verify by its JWKS, without the signing keys
: "${STATE_COLLECTION:=backend-state}"
: "${LOGIN_MEMORY:=512Mi}"    "${LOGIN_TIMEOUT:=30s}"    "${LOGIN_MIN_INSTANCES:=0}"    "${LOGIN_MAX_INSTANCES:=20}"    "${LOGIN_INGRESS:=all}"
: "${GETTOKEN_MEMORY:=256Mi}" "${GETTOKEN_TIMEOUT:=30s}" "${GETTOKEN_MIN_INSTANCES:=0}" "${GETTOKEN_MAX_INSTANCES:=20}" "${GETTOKEN_INGRESS:=all}"
: "${VALIDATE_MEMORY:=512Mi}" "${VALIDATE_TIMEOUT:=120s}" "${VALIDATE_MIN_INSTANCES:=0}" "${VALIDATE_MAX_INSTANCES:=10}"
: "${VALIDATE_HTTP_MEMORY:=512Mi}" "${VALIDATE_HTTP_TIMEOUT:=60s}" "${VALIDATE_HTTP_MIN_INSTANCES:=0}" "${VALIDATE_HTTP_MAX_INSTANCES:=10}" "${VALIDATE_HTTP_INGRESS:=internal-and-gclb}"
case "$SECRETS_MODE" in api | mount) ;; *) missing+=("SECRETS_MODE (api or mount)") ;; esac
case "$GETTOKEN_SOURCE" in adc | key | impersonate:*@*) ;; *) missing+=("GETTOKEN_SOURCE (adc, key or impersonate:<email>)") ;; esac
if [[ -n "$GETTOKEN_POLICY_FILE" && ! -f "$GETTOKEN_POLICY_FILE" ]]; then
  missing+=("GETTOKEN_POLICY_FILE (no file $GETTOKEN_POLICY_FILE)")
fi
if [[ -n "$LOGIN_URL" && "$LOGIN_URL" != https://* ]]; then
  missing+=("LOGIN_URL (an https:// address)")
fi
if ((${#missing[@]})); then
  printf 'deploy.sh: missing or bad setting: %s\n' "${missing[@]}" >&2
  echo "Set them in the environment or in a settings file (see deploy.env.example)." >&2
  exit 2
fi
sa() { echo "$1-fn@${PROJECT}.iam.gserviceaccount.com"; }
: "${LOGIN_SA:=$(sa login)}" "${GETTOKEN_SA:=$(sa gettoken)}" "${VALIDATE_SA:=$(sa validate)}"

all=(login gettoken validate validate-http)
((${#targets[@]})) || targets=("${all[@]}")
for t in "${targets[@]}"; do
  case "$t" in setup | login | gettoken | validate | validate-http) ;; *)
    echo "deploy.sh: unknown function $t (use setup, ${all[*]})" >&2; exit 2 ;;
  esac
done

# --- running ----------------------------------------------------------------
# run prints a command, quoted so that it can be pasted, then runs it unless
# this is a dry run.
run() {
  printf '%q' "$1"
  printf ' %q' "${@:2}"
  printf '\n'
  $dry_run || "$@"
}
# exists runs a describe command quietly, to skip creating what exists
# (setup is idempotent). A dry run cannot know: it prints the creation.
exists() {
  if $dry_run; then
    printf '# if missing:\n'
    return 1
  fi
  "$@" >/dev/null 2>&1
}

gcloud=(gcloud --project="$PROJECT" --quiet)
secret_ids=(session-keys accounts)
if [[ "$GETTOKEN_SOURCE" == key ]]; then
  secret_ids+=(gettoken-key)
fi

setup() {
  echo "# APIs"
  run "${gcloud[@]}" services enable cloudfunctions.googleapis.com run.googleapis.com cloudbuild.googleapis.com \
    artifactregistry.googleapis.com eventarc.googleapis.com pubsub.googleapis.com secretmanager.googleapis.com \
    firestore.googleapis.com iamcredentials.googleapis.com

  echo "# Service accounts, one per function"
  local name
  for name in login gettoken validate; do
    exists "${gcloud[@]}" iam service-accounts describe "$(sa "$name")" ||
      run "${gcloud[@]}" iam service-accounts create "$name-fn" --display-name="IMPO $name function"
  done

  echo "# Topics"
  local topic
  for topic in "$DOCS_TOPIC" "$VALID_TOPIC" "$INVALID_TOPIC"; do
    exists "${gcloud[@]}" pubsub topics describe "$topic" || run "${gcloud[@]}" pubsub topics create "$topic"
  done

  echo "# Secrets (empty: publish them with go run ./cmd/admin secret push)"
  local id
  for id in "${secret_ids[@]}"; do
    exists "${gcloud[@]}" secrets describe "$id" ||
      run "${gcloud[@]}" secrets create "$id" --replication-policy=automatic
  done

  echo "# Secret Manager accessor on exactly the secrets each function reads"
  if [[ -n "$LOGIN_URL" ]]; then
    secret_access session-keys "$LOGIN_SA" # the others verify by login's JWKS
  else
    secret_access session-keys "$LOGIN_SA" "$GETTOKEN_SA" "$VALIDATE_SA"
  fi
  secret_access accounts "$LOGIN_SA"
  if [[ "$GETTOKEN_SOURCE" == key ]]; then
    secret_access gettoken-key "$GETTOKEN_SA"
  fi

  echo "# Pub/Sub publisher on exactly the outcome topics"
  for topic in "$VALID_TOPIC" "$INVALID_TOPIC"; do
    run "${gcloud[@]}" pubsub topics add-iam-policy-binding "$topic" \
      --member="serviceAccount:$VALIDATE_SA" --role=roles/pubsub.publisher
  done

  echo "# State store: Firestore, with a TTL policy on the expiry field"
  exists "${gcloud[@]}" firestore databases describe --database="(default)" ||
    run "${gcloud[@]}" firestore databases create --location="$REGION"
  run "${gcloud[@]}" firestore fields ttls update expires --collection-group="$STATE_COLLECTION" --enable-ttl --async
  for name in "$LOGIN_SA" "$GETTOKEN_SA" "$VALIDATE_SA"; do
    run "${gcloud[@]}" projects add-iam-policy-binding "$PROJECT" \
      --member="serviceAccount:$name" --role=roles/datastore.user --condition=None
  done

  if [[ "$GETTOKEN_SOURCE" == impersonate:* ]]; then
    echo "# gettoken mints tokens for ${GETTOKEN_SOURCE#impersonate:}"
    run "${gcloud[@]}" iam service-accounts add-iam-policy-binding "${GETTOKEN_SOURCE#impersonate:}" \
      --member="serviceAccount:$GETTOKEN_SA" --role=roles/iam.serviceAccountTokenCreator
  fi

  echo "# Eventarc: the validate trigger runs as its service account, which may invoke the function"
  run "${gcloud[@]}" projects add-iam-policy-binding "$PROJECT" \
    --member="serviceAccount:$VALIDATE_SA" --role=roles/eventarc.eventReceiver --condition=None
}

secret_access() {
  local id=$1 member
  shift
  for member in "$@"; do
    run "${gcloud[@]}" secrets add-iam-policy-binding "$id" \
      --member="serviceAccount:$member" --role=roles/secretmanager.secretAccessor
  done
}

# env_yaml prints the function's environment as YAML for --env-vars-file:
# values may hold commas and JSON, which --set-env-vars cannot carry.
env_yaml() {
  local kv value
  for kv in "$@"; do
    value=${kv#*=}
    value=${value//\\/\\\\}
    value=${value//\"/\\\"}
    # A double-quoted YAML scalar, escaped as JSON would be.
    printf '%s: "%s"\n' "${kv%%=*}" "$value"
  done
}

# secret_env names how a function reads secret id: by id through the API,
# or as the file --set-secrets mounts.
secret_env() {
  local var=$1 id=$2
  if [[ "$SECRETS_MODE" == mount ]]; then
    echo "$var=/mnt/$id/value"
  else
    echo "$var=$id"
  fi
}

deploy() {
  local fn=$1 entry trigger sa_email memory timeout min max ingress
  local env=("GOOGLE_CLOUD_PROJECT=$PROJECT" "SECRETS_SOURCE=secretmanager" "STATE_STORE=firestore"
    "STATE_COLLECTION=$STATE_COLLECTION" "SESSION_ISSUER=$SESSION_ISSUER" "SESSION_AUDIENCE=$SESSION_AUDIENCE"
    "TRUSTED_PROXY_HOPS=1")
  local mounts=()
  if [[ "$fn" == login || -z "$LOGIN_URL" ]]; then
    env+=("$(secret_env SESSION_KEYS_SECRET session-keys)")
    mounts+=("/mnt/session-keys:/value=session-keys:latest")
  else
    env+=("SESSION_JWKS_URL=${LOGIN_URL%/}/jwks")
  fi
  local extra=()
  case "$fn" in
    login)
      entry=Login sa_email=$LOGIN_SA memory=$LOGIN_MEMORY timeout=$LOGIN_TIMEOUT
      min=$LOGIN_MIN_INSTANCES max=$LOGIN_MAX_INSTANCES ingress=$LOGIN_INGRESS
      trigger=(--trigger-http --allow-unauthenticated)
      env+=("SESSION_TTL=$SESSION_TTL" "$(secret_env ACCOUNTS_SECRET accounts)")
      mounts+=("/mnt/accounts:/value=accounts:latest")
      if [[ -n "$CORS_ALLOWED_ORIGINS" ]]; then env+=("CORS_ALLOWED_ORIGINS=$CORS_ALLOWED_ORIGINS"); fi
      ;;
    gettoken)
      entry=GetToken sa_email=$GETTOKEN_SA memory=$GETTOKEN_MEMORY timeout=$GETTOKEN_TIMEOUT
      min=$GETTOKEN_MIN_INSTANCES max=$GETTOKEN_MAX_INSTANCES ingress=$GETTOKEN_INGRESS
      trigger=(--trigger-http --allow-unauthenticated)
      env+=("GETTOKEN_SOURCE=$GETTOKEN_SOURCE")
      if [[ "$GETTOKEN_SOURCE" == key ]]; then
        env+=("$(secret_env GETTOKEN_KEY_SECRET gettoken-key)")
        mounts+=("/mnt/gettoken-key:/value=gettoken-key:latest")
      fi
      if [[ -n "$GETTOKEN_POLICY_FILE" ]]; then env+=("GETTOKEN_POLICY=$(tr -d '\n' <"$GETTOKEN_POLICY_FILE")"); fi
      if [[ -n "$CORS_ALLOWED_ORIGINS" ]]; then env+=("CORS_ALLOWED_ORIGINS=$CORS_ALLOWED_ORIGINS"); fi
      ;;
    validate)
      entry=Validate sa_email=$VALIDATE_SA memory=$VALIDATE_MEMORY timeout=$VALIDATE_TIMEOUT
      min=$VALIDATE_MIN_INSTANCES max=$VALIDATE_MAX_INSTANCES ingress=internal-only
      trigger=(--trigger-topic="$DOCS_TOPIC" --retry --trigger-service-account="$VALIDATE_SA")
      env+=("VALIDATE_VALID_TOPIC=$VALID_TOPIC" "VALIDATE_INVALID_TOPIC=$INVALID_TOPIC")
      ;;
    validate-http)
      entry=ValidateHTTP sa_email=$VALIDATE_SA memory=$VALIDATE_HTTP_MEMORY timeout=$VALIDATE_HTTP_TIMEOUT
      min=$VALIDATE_HTTP_MIN_INSTANCES max=$VALIDATE_HTTP_MAX_INSTANCES ingress=$VALIDATE_HTTP_INGRESS
      trigger=(--trigger-http --allow-unauthenticated)
      ;;
  esac
  if [[ "$SECRETS_MODE" == mount && ${#mounts[@]} -gt 0 ]]; then
    extra+=(--set-secrets="$(printf '%s,' "${mounts[@]}" | sed 's/,$//')")
  fi
  echo "# $fn: entry point $entry"
  # The file lives in .deploy/, which neither git nor the upload includes.
  local file=".deploy/$fn.env.yaml"
  if $dry_run; then
    printf '# %s would hold:\n' "$file"
    env_yaml "${env[@]}" | sed 's/^/#   /'
  else
    mkdir -p .deploy
    env_yaml "${env[@]}" >"$file"
  fi
  run "${gcloud[@]}" functions deploy "$fn" --gen2 --runtime=go126 --region="$REGION" --source=. \
    --entry-point="$entry" "${trigger[@]}" --service-account="$sa_email" \
    --memory="$memory" --timeout="$timeout" --min-instances="$min" --max-instances="$max" \
    --ingress-settings="$ingress" --env-vars-file="$file" "${extra[@]}"
  if [[ "$fn" == validate ]]; then
    run "${gcloud[@]}" functions add-invoker-policy-binding validate --region="$REGION" \
      --member="serviceAccount:$VALIDATE_SA"
  fi
}

for t in "${targets[@]}"; do
  if [[ "$t" == setup ]]; then setup; else deploy "$t"; fi
done
