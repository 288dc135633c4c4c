#!/usr/bin/env bash
# deploy.sh — deploys IMPO's backend functions to Google Cloud (Cloud
# Functions 2nd gen) from this checkout, and prepares the project once.
#
#   ./deploy.sh [--dry-run] [--settings FILE] setup
#   ./deploy.sh [--dry-run] [--settings FILE] [FUNCTION ...]
#
# The functions are the rows of the table in this script; with none named,
# all are deployed. Settings come from the environment, or from a settings
# file (default ./deploy.env if present; see deploy.env.example). --dry-run
# prints every command, exactly, and runs none. A missing setting stops the
# script before anything runs.
set -euo pipefail

# --- the functions ----------------------------------------------------------
# One row per deployed function. Setup, deploy and the dry run learn all
# they know of a function from its row: adding a function is adding a row.
#
#   function  the deployed name. The settings <FUNCTION>_MEMORY, _TIMEOUT,
#             _MIN_INSTANCES, _MAX_INSTANCES and _INGRESS (upper case, - as
#             _: VALIDATE_HTTP_MEMORY) override the row's values.
#   entry     the Go entry point that its package registers.
#   trigger   http: a public URL; the function authenticates its callers.
#             topic:SETTING: the Pub/Sub topic that SETTING names, with
#             retries, delivered by Eventarc as the function's account.
#             Only the trigger calls it: its ingress is the row's, always.
#   account   runs as <account>-fn@PROJECT, or as the setting <ACCOUNT>_SA.
#   sessions  sign: reads session-keys. verify: reads session-keys or, once
#             LOGIN_URL is set, the signer's public JWKS instead.
#   env       the rest of its environment, in this order:
#               SETTING            the setting, by its name (left out if empty)
#               VAR=SETTING        the setting, as VAR
#               VAR=secret:ID      how to read secret ID; and read access to it
#               VAR=topic:SETTING  the topic SETTING names; and publisher on it
functions_table='
# function     entry         trigger           account   sessions  memory  timeout  min  max  ingress            env
login          Login         http              login     sign      512Mi   30s      0    20   all                SESSION_TTL ACCOUNTS_SECRET=secret:accounts CORS_ALLOWED_ORIGINS
gettoken       GetToken      http              gettoken  verify    256Mi   30s      0    20   all                GETTOKEN_SOURCE GETTOKEN_KEY_SECRET=secret:gettoken-key GETTOKEN_POLICY CORS_ALLOWED_ORIGINS
validate       Validate      topic:DOCS_TOPIC  validate  verify    512Mi   120s     0    10   internal-only      VALIDATE_VALID_TOPIC=topic:VALID_TOPIC VALIDATE_INVALID_TOPIC=topic:INVALID_TOPIC
validate-http  ValidateHTTP  http              validate  verify    512Mi   60s      0    10   internal-and-gclb
'

# The table, one array per column; a row is an index.
names=() entries=() triggers=() accounts=() sessions=() memories=() timeouts=() mins=() maxes=() ingresses=() envs=()
while read -r name entry trigger account session memory timeout min max ingress env; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  if [[ " ${names[*]} " == *" $name "* ]]; then
    echo "deploy.sh: function $name has two rows" >&2; exit 2
  fi
  case "$trigger:$session" in http:sign | http:verify | topic:?*:sign | topic:?*:verify) ;; *)
    echo "deploy.sh: bad row $name: trigger $trigger, sessions $session" >&2; exit 2 ;;
  esac
  names+=("$name") entries+=("$entry") triggers+=("$trigger") accounts+=("$account") sessions+=("$session")
  memories+=("$memory") timeouts+=("$timeout") mins+=("$min") maxes+=("$max") ingresses+=("$ingress") envs+=("$env")
done <<<"$functions_table"

usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
  echo "Functions: ${names[*]}"
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
case "$SECRETS_MODE" in api | mount) ;; *) missing+=("SECRETS_MODE (api or mount)") ;; esac
case "$GETTOKEN_SOURCE" in adc | key | impersonate:*@*) ;; *) missing+=("GETTOKEN_SOURCE (adc, key or impersonate:<email>)") ;; esac
if [[ -n "$GETTOKEN_POLICY_FILE" && ! -f "$GETTOKEN_POLICY_FILE" ]]; then
  missing+=("GETTOKEN_POLICY_FILE (no file $GETTOKEN_POLICY_FILE)")
fi
if [[ -n "$LOGIN_URL" && "$LOGIN_URL" != https://* ]]; then
  missing+=("LOGIN_URL (an https:// address)")
fi

# has says whether its first argument is among the others.
has() {
  local x=$1 y
  shift
  for y in "$@"; do
    [[ "$y" == "$x" ]] && return 0
  done
  return 1
}

# Every topic the table names (triggers, then what each row publishes to),
# by setting, in table order; each must be set.
topics=()
for i in "${!names[@]}"; do
  refs=()
  if [[ "${triggers[i]}" == topic:* ]]; then refs+=("${triggers[i]#topic:}"); fi
  read -ra items <<<"${envs[i]}"
  for item in "${items[@]}"; do
    if [[ "$item" == *=topic:* ]]; then refs+=("${item#*=topic:}"); fi
  done
  for topic in "${refs[@]}"; do
    has "$topic" "${topics[@]}" || topics+=("$topic")
  done
done
require "${topics[@]}"

if ((${#missing[@]})); then
  printf 'deploy.sh: missing or bad setting: %s\n' "${missing[@]}" >&2
  echo "Set them in the environment or in a settings file (see deploy.env.example)." >&2
  exit 2
fi
# gettoken's policy travels in its environment as one line of JSON, read
# from GETTOKEN_POLICY_FILE (never from this script's environment).
# shellcheck disable=SC2034 # read by name, as the table's env says
GETTOKEN_POLICY=$(if [[ -n "$GETTOKEN_POLICY_FILE" ]]; then tr -d '\n' <"$GETTOKEN_POLICY_FILE"; fi)

((${#targets[@]})) || targets=("${names[@]}")
for t in "${targets[@]}"; do
  if [[ "$t" != setup ]] && ! has "$t" "${names[@]}"; then
    echo "deploy.sh: unknown function $t (use setup, ${names[*]})" >&2; exit 2
  fi
done

# --- the table, read ----------------------------------------------------------
# stem turns a table name into the stem of its settings: validate-http →
# VALIDATE_HTTP.
stem() {
  local s
  s=$(tr '[:lower:]-' '[:upper:]_' <<<"$1")
  echo "$s"
}
# fn_setting prints the setting <FUNCTION>_$2 of function $1, or $3.
fn_setting() {
  local var
  var="$(stem "$1")_$2"
  echo "${!var:-$3}"
}
sa() { echo "$1-fn@${PROJECT}.iam.gserviceaccount.com"; }
# email prints the address a table account runs as: <ACCOUNT>_SA, or the
# account setup creates.
email() {
  local var
  var="$(stem "$1")_SA"
  echo "${!var:-$(sa "$1")}"
}
# secret_in_use says whether this project has secret $1: gettoken-key only
# when tokens are signed with a key of gettoken's own.
secret_in_use() {
  [[ "$1" != gettoken-key || "$GETTOKEN_SOURCE" == key ]]
}
# reads says whether row $1 reads secret $2.
reads() {
  local item items=()
  if [[ "$2" == session-keys ]]; then
    [[ "${sessions[$1]}" == sign || -z "$LOGIN_URL" ]]
    return
  fi
  read -ra items <<<"${envs[$1]}"
  for item in "${items[@]}"; do
    [[ "$item" == *=secret:"$2" ]] && return 0
  done
  return 1
}
# row prints the index of function $1.
row() {
  local i
  for i in "${!names[@]}"; do
    if [[ "${names[i]}" == "$1" ]]; then echo "$i"; fi
  done
}

# The secrets in use, the accounts, and who publishes where, in table order.
secret_ids=() account_names=() publishers=()
for i in "${!names[@]}"; do
  has "${accounts[i]}" "${account_names[@]}" || account_names+=("${accounts[i]}")
  if reads "$i" session-keys && ! has session-keys "${secret_ids[@]}"; then
    secret_ids+=(session-keys)
  fi
  read -ra items <<<"${envs[i]}"
  for item in "${items[@]}"; do
    case "$item" in
      *=secret:*)
        id=${item#*=secret:}
        if secret_in_use "$id" && ! has "$id" "${secret_ids[@]}"; then secret_ids+=("$id"); fi
        ;;
      *=topic:*) publishers+=("${item#*=topic:} $i") ;;
    esac
  done
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

setup() {
  local i id account topic pair item items=() granted=()
  echo "# APIs"
  run "${gcloud[@]}" services enable cloudfunctions.googleapis.com run.googleapis.com cloudbuild.googleapis.com \
    artifactregistry.googleapis.com eventarc.googleapis.com pubsub.googleapis.com secretmanager.googleapis.com \
    firestore.googleapis.com iamcredentials.googleapis.com

  echo "# Service accounts, one per function"
  for account in "${account_names[@]}"; do
    exists "${gcloud[@]}" iam service-accounts describe "$(sa "$account")" ||
      run "${gcloud[@]}" iam service-accounts create "$account-fn" --display-name="IMPO $account function"
  done

  echo "# Topics"
  for topic in "${topics[@]}"; do
    exists "${gcloud[@]}" pubsub topics describe "${!topic}" || run "${gcloud[@]}" pubsub topics create "${!topic}"
  done

  echo "# Secrets (empty: publish them with go run ./cmd/admin secret push)"
  for id in "${secret_ids[@]}"; do
    exists "${gcloud[@]}" secrets describe "$id" ||
      run "${gcloud[@]}" secrets create "$id" --replication-policy=automatic
  done

  echo "# Secret Manager accessor on exactly the secrets each function reads"
  for id in "${secret_ids[@]}"; do
    for i in "${!names[@]}"; do
      account=$(email "${accounts[i]}")
      if reads "$i" "$id" && ! has "$id $account" "${granted[@]}"; then
        granted+=("$id $account")
        run "${gcloud[@]}" secrets add-iam-policy-binding "$id" \
          --member="serviceAccount:$account" --role=roles/secretmanager.secretAccessor
      fi
    done
  done

  echo "# Pub/Sub publisher on exactly the outcome topics"
  for pair in "${publishers[@]}"; do
    topic=${pair% *} account=$(email "${accounts[${pair#* }]}")
    if ! has "$topic $account" "${granted[@]}"; then
      granted+=("$topic $account")
      run "${gcloud[@]}" pubsub topics add-iam-policy-binding "${!topic}" \
        --member="serviceAccount:$account" --role=roles/pubsub.publisher
    fi
  done

  echo "# State store: Firestore, with a TTL policy on the expiry field"
  exists "${gcloud[@]}" firestore databases describe --database="(default)" ||
    run "${gcloud[@]}" firestore databases create --location="$REGION"
  run "${gcloud[@]}" firestore fields ttls update expires --collection-group="$STATE_COLLECTION" --enable-ttl --async
  for i in "${!names[@]}"; do
    account=$(email "${accounts[i]}")
    if ! has "datastore $account" "${granted[@]}"; then
      granted+=("datastore $account")
      run "${gcloud[@]}" projects add-iam-policy-binding "$PROJECT" \
        --member="serviceAccount:$account" --role=roles/datastore.user --condition=None
    fi
  done

  if [[ "$GETTOKEN_SOURCE" == impersonate:* ]]; then
    for i in "${!names[@]}"; do
      read -ra items <<<"${envs[i]}"
      for item in "${items[@]}"; do
        if [[ "${item#*=}" == GETTOKEN_SOURCE ]]; then
          echo "# ${names[i]} mints tokens for ${GETTOKEN_SOURCE#impersonate:}"
          run "${gcloud[@]}" iam service-accounts add-iam-policy-binding "${GETTOKEN_SOURCE#impersonate:}" \
            --member="serviceAccount:$(email "${accounts[i]}")" --role=roles/iam.serviceAccountTokenCreator
        fi
      done
    done
  fi

  for i in "${!names[@]}"; do
    if [[ "${triggers[i]}" == topic:* ]]; then
      echo "# Eventarc: the ${names[i]} trigger runs as its service account, which may invoke the function"
      run "${gcloud[@]}" projects add-iam-policy-binding "$PROJECT" \
        --member="serviceAccount:$(email "${accounts[i]}")" --role=roles/eventarc.eventReceiver --condition=None
    fi
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

# deploy deploys the function of table row $1.
deploy() {
  local i=$1 fn=${names[$1]} entry=${entries[$1]} sa_email ingress item var src id
  sa_email=$(email "${accounts[i]}")
  local env=("GOOGLE_CLOUD_PROJECT=$PROJECT" "SECRETS_SOURCE=secretmanager" "STATE_STORE=firestore"
    "STATE_COLLECTION=$STATE_COLLECTION" "SESSION_ISSUER=$SESSION_ISSUER" "SESSION_AUDIENCE=$SESSION_AUDIENCE"
    "TRUSTED_PROXY_HOPS=1")
  local mounts=() extra=() trigger=() items=()
  if reads "$i" session-keys; then
    env+=("$(secret_env SESSION_KEYS_SECRET session-keys)")
    mounts+=("/mnt/session-keys:/value=session-keys:latest")
  else
    env+=("SESSION_JWKS_URL=${LOGIN_URL%/}/jwks")
  fi
  read -ra items <<<"${envs[i]}"
  for item in "${items[@]}"; do
    var=${item%%=*} src=${item#*=}
    case "$src" in
      secret:*)
        id=${src#secret:}
        if secret_in_use "$id"; then
          env+=("$(secret_env "$var" "$id")")
          mounts+=("/mnt/$id:/value=$id:latest")
        fi
        continue
        ;;
      topic:*) src=${src#topic:} ;;
    esac
    if [[ -n "${!src:-}" ]]; then env+=("$var=${!src}"); fi
  done
  case "${triggers[i]}" in
    http)
      trigger=(--trigger-http --allow-unauthenticated)
      ingress=$(fn_setting "$fn" INGRESS "${ingresses[i]}")
      ;;
    topic:*)
      src=${triggers[i]#topic:}
      trigger=(--trigger-topic="${!src}" --retry --trigger-service-account="$sa_email")
      ingress=${ingresses[i]}
      ;;
  esac
  if [[ "$SECRETS_MODE" == mount && ${#mounts[@]} -gt 0 ]]; then
    extra+=(--set-secrets="$(printf '%s,' "${mounts[@]}" | sed 's/,$//')")
  fi
  echo "# $fn: entry point $entry"
  # The file lives in .deploy/, which neither git nor .gcloudignore lets in.
  local file=".deploy/$fn.env.yaml"
  if $dry_run; then
    printf '# %s would hold:\n' "$file"
    env_yaml "${env[@]}" | sed 's/^/#   /'
  else
    mkdir -p .deploy
    env_yaml "${env[@]}" >"$file"
  fi
  run "${gcloud[@]}" functions deploy "$fn" --gen2 --runtime=go126 --region="$REGION" --source="$upload_dir" \
    --entry-point="$entry" "${trigger[@]}" --service-account="$sa_email" \
    --memory="$(fn_setting "$fn" MEMORY "${memories[i]}")" --timeout="$(fn_setting "$fn" TIMEOUT "${timeouts[i]}")" \
    --min-instances="$(fn_setting "$fn" MIN_INSTANCES "${mins[i]}")" \
    --max-instances="$(fn_setting "$fn" MAX_INSTANCES "${maxes[i]}")" \
    --ingress-settings="$ingress" --env-vars-file="$file" "${extra[@]}"
  if [[ "${triggers[i]}" == topic:* ]]; then
    run "${gcloud[@]}" functions add-invoker-policy-binding "$fn" --region="$REGION" \
      --member="serviceAccount:$sa_email"
  fi
}

# The upload: exactly the files that .gcloudignore lets through, as gcloud
# lists them, copied to their own folder. Why not --source=.: gcloud
# functions deploy zips a folder testing each sub-folder as if it were a
# file, so an allow-list cannot let a folder back in, and its files are
# lost; gcloud's listing applies .gcloudignore as git applies .gitignore.
upload_dir=.deploy/source
stage_source() {
  local files f
  if $dry_run; then
    printf '# %s would hold the files of: gcloud meta list-files-for-upload .\n' "$upload_dir"
    return
  fi
  files=$("${gcloud[@]}" meta list-files-for-upload .)
  [[ -n "$files" ]] || { echo "deploy.sh: .gcloudignore lets nothing through" >&2; exit 1; }
  rm -rf "$upload_dir"
  while IFS= read -r f; do
    mkdir -p "$upload_dir/$(dirname "$f")"
    cp "$f" "$upload_dir/$f"
  done <<<"$files"
  printf '# %s holds the %d files of: gcloud meta list-files-for-upload .\n' "$upload_dir" "$(wc -l <<<"$files")"
}

staged=false
for t in "${targets[@]}"; do
  if [[ "$t" == setup ]]; then
    setup
    continue
  fi
  $staged || stage_source
  staged=true
  deploy "$(row "$t")"
done
