#!/usr/bin/env bash
# deploy.sh — deploys IMPO's backend functions to Google Cloud (Cloud
# Functions 2nd gen) from this checkout, and prepares the project once.
#
#   ./deploy.sh [--dry-run] [--settings FILE] setup [FUNCTION ...]
#   ./deploy.sh [--dry-run] [--settings FILE] [FUNCTION ...]
#
# The functions are the rows of the first table in this script, all that
# their accounts may do is the second, and what setup counts in their logs
# is the third; with no function named, all are deployed, login first.
# Settings come from the environment, or from a settings file (default
# ./deploy.env if present; see deploy.env.example). --dry-run prints every
# command, exactly, and runs none. A missing setting or a dangerous
# configuration stops the script before anything runs.
set -euo pipefail

# --- the functions ----------------------------------------------------------
# One row per deployed function. Setup, deploy and the dry run learn all
# they know of a function from its row, and of its account from the grants
# table below: adding a function is a row here and its grants there.
#
#   function  the deployed name. The settings <FUNCTION>_MEMORY, _CPU,
#             _CONCURRENCY, _TIMEOUT, _MIN_INSTANCES, _MAX_INSTANCES and
#             _INGRESS (upper case, - as _: VALIDATE_HTTP_MEMORY) override
#             the row's values.
#   package   the Go package under functions/ that registers its entry
#             point. Its upload holds that package, what it imports from
#             this module, go.mod and go.sum, and a root package that
#             imports it alone: the function's binary links only its own
#             dependencies (see stage_source).
#   entry     the Go entry point that its package registers.
#   trigger   http: a public URL; the function authenticates its callers.
#             topic:SETTING: the Pub/Sub topic that SETTING names, with
#             retries, delivered by Eventarc as the function's account.
#             Only the trigger calls it: its ingress is the row's, always.
#             What it fails MAX_DELIVERY_ATTEMPTS times goes to the
#             dead-letter topic (DEAD_LETTER_TOPIC).
#   account   runs as <account>-fn@PROJECT, or as the setting <ACCOUNT>_SA.
#   sessions  sign: holds the signing keys (session-keys); login only.
#             verify: checks sessions with login's public keys, read from
#             its JWKS (SESSION_JWKS_URL), and never holds a private key.
#             Every function gets LOGIN_ISSUER, login's URL (see
#             login_issuer): the iss that login signs and the others expect.
#   state     its own Firestore database (FIRESTORE_DATABASE), which its
#             account alone may write. Revocations live in the database
#             $sessions_database (FIRESTORE_SESSIONS_DATABASE): login
#             writes it, the others only read it.
#   env       the rest of its environment, in this order:
#               SETTING            the setting, by its name (left out if empty)
#               VAR=SETTING        the setting, as VAR
#               VAR=secret:ID      how to read secret ID (left out when no
#                                  grant is in force for it)
#               VAR=topic:SETTING  the topic SETTING names
#
# memory, cpu and concurrency size one instance (Cloud Run: --memory, --cpu,
# and --concurrency, the requests it serves at once). Cloud Functions
# defaults to one request per instance and to a fraction of a vCPU (.333
# at 512Mi); more than one request at once needs a whole vCPU. Each value
# follows from what docs/benchmarks.md measures (go run ./cmd/loadtest):
#   login     hashes people's passwords (argon2id: 19 MiB and 40-45 ms of
#             a core each, 22-25 logins/s per core); it runs GOMAXPROCS+1
#             hashes at once and queues the rest for LOGIN_HASH_WAIT (2s).
#             Bursts of 200 and 1,000 people at once peaked at 179 and 214
#             MiB: 512Mi leaves twice that. 16 at once empty a full queue
#             in under a second, so the autoscaler adds instances before an
#             instance answers 503; services' grants hash nothing (about
#             7,500/s per core).
#   gettoken  a cached token costs well under a millisecond of CPU: one
#             vCPU serves Cloud Run's usual 80 at once in little memory.
#   validate  a document of up to 10 MB peaks below 40 MiB while it is
#             checked: 8 at once fit in 512Mi beside the process.
functions_table='
# function     package             entry         trigger           account   sessions  state           memory  cpu  concurrency  timeout  min  max  ingress            env
login          functions/login     Login         http              login     sign      login-state     512Mi   1    16           30s      0    20   all                SESSION_TTL ACCOUNTS_SECRET=secret:accounts CLIENTS_SECRET=secret:clients LOGIN_REFRESH_IDLE LOGIN_REFRESH_MAX CORS_ALLOWED_ORIGINS SESSION_COOKIE
gettoken       functions/gettoken  GetToken      http              gettoken  verify    gettoken-state  256Mi   1    80           30s      0    20   all                GETTOKEN_SOURCE GETTOKEN_KEY_SECRET=secret:gettoken-key GETTOKEN_POLICY CORS_ALLOWED_ORIGINS SESSION_COOKIE
validate       functions/validate  Validate      topic:DOCS_TOPIC  validate  verify    validate-state  512Mi   1    8            120s     0    10   internal-only      VALIDATE_VALID_TOPIC=topic:VALID_TOPIC VALIDATE_INVALID_TOPIC=topic:INVALID_TOPIC VALIDATE_TRIGGER_TOPIC=DOCS_TOPIC
validate-http  functions/validate  ValidateHTTP  http              validate  verify    validate-state  512Mi   1    8            60s      0    10   internal-and-gclb  SESSION_COOKIE
'

# The Firestore database of revoked sessions.
sessions_database=sessions

# --- what each account may do -------------------------------------------------
# Every IAM grant that setup makes, and why: nothing else is granted to a
# function's account (tests/deploy_test.go checks the requests against this
# table). One row per (account, role, resource):
#
#   account   a table account (its runtime service account), or pubsub:
#             the project's Pub/Sub service agent
#             (service-PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com),
#             which moves dead letters, and may only do that.
#   role      the IAM role.
#   resource  secret:ID        the secret ID
#             topic:SETTING    the topic SETTING names
#             trigger:NAME     the Pub/Sub subscription of the trigger of the
#                              deployed function NAME (Eventarc makes and
#                              names it; granted when NAME is deployed)
#             database:ID      the Firestore database ID: a project binding
#                              with the IAM condition
#                              resource.name=="projects/PROJECT/databases/ID"
#             project          the whole project (only what IAM offers
#                              nowhere narrower)
#             function:NAME    the deployed function NAME (roles/run.invoker,
#                              granted when NAME is deployed)
#             vended           each service account that the gettoken
#                              policy names (service_account), never a
#                              function's own
#   when      -                always
#             SETTING=VALUE    only while the setting has that value
#             retired          granted by an earlier version: setup removes
#                              it wherever it still finds it
#   why       the rest of the line.
grants_table='
# account  role                                  resource                 when                         why
login      roles/secretmanager.secretAccessor    secret:session-keys      -                            signs sessions: the only reader of the private keys
login      roles/secretmanager.secretAccessor    secret:accounts          -                            checks passwords and service secrets
login      roles/secretmanager.secretAccessor    secret:clients           -                            reads the registered browser clients: their redirect URIs, origins and grants
login      roles/datastore.user                  database:login-state     -                            counts failed logins and locks out
login      roles/datastore.user                  database:sessions        -                            writes revocations: the only writer
gettoken   roles/datastore.user                  database:gettoken-state  -                            limits the rate of each caller
gettoken   roles/datastore.viewer                database:sessions        -                            reads revocations, cannot undo one
gettoken   roles/iam.serviceAccountTokenCreator  vended                   GETTOKEN_SOURCE=impersonate  mints tokens as the accounts the policy names, never as itself
gettoken   roles/secretmanager.secretAccessor    secret:gettoken-key      GETTOKEN_SOURCE=key          mints tokens with this key (a key to rotate; prefer impersonate)
validate   roles/datastore.user                  database:validate-state  -                            remembers the message ids it handled
validate   roles/datastore.viewer                database:sessions        -                            reads revocations (validate-http), cannot undo one
validate   roles/pubsub.publisher                topic:VALID_TOPIC        -                            publishes valid documents
validate   roles/pubsub.publisher                topic:INVALID_TOPIC      -                            publishes the reports of invalid ones
validate   roles/eventarc.eventReceiver          project                  -                            its trigger delivers events as it (a project-only role)
validate   roles/run.invoker                     function:validate        -                            its trigger invokes the function as it
pubsub     roles/pubsub.publisher                topic:DEAD_LETTER_TOPIC  -                            moves there what a trigger failed to deliver MAX_DELIVERY_ATTEMPTS times
pubsub     roles/pubsub.subscriber               trigger:validate         -                            acknowledges on the trigger what it moved to the dead-letter topic
gettoken   roles/secretmanager.secretAccessor    secret:session-keys      retired                      verified sessions with the private keys
validate   roles/secretmanager.secretAccessor    secret:session-keys      retired                      verified sessions with the private keys
login      roles/datastore.user                  project                  retired                      wrote every database of the project
gettoken   roles/datastore.user                  project                  retired                      wrote every database of the project
validate   roles/datastore.user                  project                  retired                      wrote every database of the project
'

# What setup puts in a secret it creates, as its first version, when a
# function can start with it: clients, the empty list (no browser client
# registered yet; login refuses every client until the operator adds one).
# Without a version, login could not read it, and with SECRETS_MODE=mount
# Cloud Run could not even deploy login. The other secrets start empty:
# no first version of them would be safe.
declare -A secret_first=([clients]='[]')

# --- what setup counts -------------------------------------------------------
# One log-based metric per row: a counter in Cloud Monitoring
# (logging.googleapis.com/user/METRIC) of the log lines of the deployed
# function whose jsonPayload carries this message and, unless -, a field
# with one of the values given (FIELD=VALUE or FIELD=V1,V2). The function
# writes the lines (shared/routing: "document validated", one per message
# done, with outcome and reason; functions/validate: one WARNING per retried
# delivery);
# setup creates each metric, or brings its filter and description up to
# date. Columns are separated by |.
metrics_table='
# metric            | function | message                              | match                       | what it counts
validate_valid      | validate | document validated                   | outcome=valid               | documents found valid, published to VALID_TOPIC
validate_invalid    | validate | document validated                   | reason=invalid              | documents found invalid, whose reports went to INVALID_TOPIC
validate_too_old    | validate | document validated                   | reason=too-old              | messages older than VALIDATE_MAX_EVENT_AGE, routed to INVALID_TOPIC with the original
validate_permanent  | validate | document validated                   | reason=too-large,unreadable | messages that can never be carried as they are (too large, not a Pub/Sub message), routed to INVALID_TOPIC
validate_retries    | validate | delivery failed; Pub/Sub will retry  | -                           | deliveries that failed for now, which Pub/Sub retries (then dead-letters)
'

# The tables, one array per column; a row is an index.
names=() packages=() entries=() triggers=() accounts=() sessions=() states=() memories=() cpus=() concurrencies=()
timeouts=() mins=() maxes=() ingresses=() envs=()
while read -r name package entry trigger account session state memory cpu concurrency timeout min max ingress env; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  if [[ " ${names[*]} " == *" $name "* ]]; then
    echo "deploy.sh: function $name has two rows" >&2; exit 2
  fi
  case "$trigger:$session" in http:sign | http:verify | topic:?*:sign | topic:?*:verify) ;; *)
    echo "deploy.sh: bad row $name: trigger $trigger, sessions $session" >&2; exit 2 ;;
  esac
  if [[ "$account" == pubsub ]]; then
    echo "deploy.sh: bad row $name: account pubsub is the Pub/Sub service agent's" >&2; exit 2
  fi
  if [[ ! "$package" =~ ^functions/[a-z0-9_/]+$ ]]; then
    echo "deploy.sh: bad row $name: package $package is not a folder under functions/" >&2; exit 2
  fi
  names+=("$name") packages+=("$package") entries+=("$entry") triggers+=("$trigger") accounts+=("$account") sessions+=("$session")
  states+=("$state") memories+=("$memory") cpus+=("$cpu") concurrencies+=("$concurrency") timeouts+=("$timeout") mins+=("$min")
  maxes+=("$max") ingresses+=("$ingress") envs+=("$env")
done <<<"$functions_table"

g_accounts=() g_roles=() g_resources=() g_whens=() g_whys=()
while read -r account role resource when why; do
  [[ -z "$account" || "$account" == \#* ]] && continue
  bad=""
  [[ " ${accounts[*]} pubsub " == *" $account "* ]] || bad="no function runs as $account"
  [[ "$role" == roles/?* ]] || bad="role $role"
  case "$resource" in secret:?* | topic:?* | database:?* | project | vended) ;;
    function:?*)
      [[ " ${names[*]} " == *" ${resource#function:} "* ]] || bad="no function ${resource#function:}"
      [[ "$role" == roles/run.invoker ]] || bad="on a function, only roles/run.invoker"
      ;;
    trigger:?*)
      bad="no function ${resource#trigger:} with a topic trigger"
      for i in "${!names[@]}"; do
        if [[ "${names[i]}" == "${resource#trigger:}" && "${triggers[i]}" == topic:* ]]; then bad=""; fi
      done
      ;;
    *) bad="resource $resource" ;;
  esac
  if [[ "$account" == pubsub && "$resource" != topic:?* && "$resource" != trigger:?* ]]; then
    bad="the Pub/Sub service agent moves dead letters: only topic: and trigger: resources"
  fi
  [[ "$when" =~ ^(-|retired|[A-Z][A-Z0-9_]*=.+)$ ]] || bad="when $when"
  [[ -n "$why" ]] || bad="it says no why"
  if [[ -n "$bad" ]]; then
    echo "deploy.sh: bad grant row $account $role $resource: $bad" >&2; exit 2
  fi
  g_accounts+=("$account") g_roles+=("$role") g_resources+=("$resource") g_whens+=("$when") g_whys+=("$why")
done <<<"$grants_table"

# trim prints $1 without the blanks around it.
trim() {
  local s=$1
  s=${s#"${s%%[![:space:]]*}"}
  printf '%s' "${s%"${s##*[![:space:]]}"}"
}
m_names=() m_functions=() m_messages=() m_outcomes=() m_whats=()
while IFS='|' read -r metric fn message outcome what; do
  metric=$(trim "$metric")
  [[ -z "$metric" || "$metric" == \#* ]] && continue
  fn=$(trim "$fn") message=$(trim "$message") outcome=$(trim "$outcome") what=$(trim "$what")
  bad=""
  [[ "$metric" =~ ^[A-Za-z0-9_-]+$ ]] || bad="its name"
  [[ " ${m_names[*]} " != *" $metric "* ]] || bad="it has two rows"
  [[ " ${names[*]} " == *" $fn "* ]] || bad="no function $fn"
  [[ -n "$message" && "$message" != *'"'* && "$outcome" != *'"'* ]] || bad="its message"
  [[ -n "$outcome" && -n "$what" ]] || bad="a column is empty"
  [[ "$outcome" == - || "$outcome" =~ ^[a-z_]+=[A-Za-z0-9_-]+(,[A-Za-z0-9_-]+)*$ ]] || bad="its match (- or FIELD=VALUE[,VALUE])"
  if [[ -n "$bad" ]]; then
    echo "deploy.sh: bad metric row $metric: $bad" >&2; exit 2
  fi
  m_names+=("$metric") m_functions+=("$fn") m_messages+=("$message") m_outcomes+=("$outcome") m_whats+=("$what")
done <<<"$metrics_table"

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
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
: "${DEAD_LETTER_TOPIC:=documentos-muertos}"   # what a trigger fails to deliver MAX_DELIVERY_ATTEMPTS times
: "${DEAD_LETTER_SUBSCRIPTION:=documentos-muertos-sub}" # where operators read the dead letters
: "${DEAD_LETTER_RETENTION:=7d}"       # how long the dead letters wait there (10m to 31d)
: "${MAX_DELIVERY_ATTEMPTS:=10}"       # per message, on a trigger (5 to 100)
: "${MIN_RETRY_DELAY:=10s}"            # a trigger's backoff between attempts, growing from
: "${MAX_RETRY_DELAY:=600s}"           # the min to the max (0s to 600s)
: "${GETTOKEN_SOURCE:=impersonate}"     # impersonate | key (adc and selfsigned are for local runs only)
: "${GETTOKEN_POLICY_FILE:=}"           # local file with the gettoken policy (JSON)
: "${SESSION_AUDIENCE:=impo-copetes-backend}"
: "${SESSION_TTL:=1h}"
: "${CORS_ALLOWED_ORIGINS:=}"
: "${SESSION_COOKIE:=}"                  # cookie mode for staff browsers (README: «Modo cookie»); the functions must share one host
: "${LOGIN_URL:=}"                       # login's URL as clients see it (a custom domain); unset, its Cloud Run URL
: "${LOGIN_REFRESH_IDLE:=}"              # login's refresh token lifetimes; unset, login's defaults
: "${LOGIN_REFRESH_MAX:=}"
: "${STATE_COLLECTION:=backend-state}"
case "$SECRETS_MODE" in api | mount) ;; *) missing+=("SECRETS_MODE (api or mount)") ;; esac
case "$GETTOKEN_SOURCE" in impersonate | key | adc | selfsigned | impersonate:*) ;; *)
  missing+=("GETTOKEN_SOURCE (impersonate or key)") ;;
esac
if [[ -n "$GETTOKEN_POLICY_FILE" && ! -f "$GETTOKEN_POLICY_FILE" ]]; then
  missing+=("GETTOKEN_POLICY_FILE (no file $GETTOKEN_POLICY_FILE)")
fi
# LOGIN_URL is the issuer that every token names and clients compare as a
# string (see login_issuer): https, a lower-case host, no default port, a
# plain path, no query or fragment; one trailing slash is dropped.
if [[ -n "$LOGIN_URL" ]]; then
  url=${LOGIN_URL%/}
  if [[ ! "$url" =~ ^https://[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[1-9][0-9]{0,4})?(/[A-Za-z0-9._~-]+)*$ ||
    "$url/" == *:443/* || "$url/" == */./* || "$url/" == */../* ]]; then
    missing+=("LOGIN_URL (login's https URL as clients see it: https://host[:port][/path], lower-case host, no default port, query or fragment)")
  fi
fi
if [[ ! "$MAX_DELIVERY_ATTEMPTS" =~ ^[0-9]{1,3}$ ]] || ((10#$MAX_DELIVERY_ATTEMPTS < 5 || 10#$MAX_DELIVERY_ATTEMPTS > 100)); then
  missing+=("MAX_DELIVERY_ATTEMPTS (5 to 100, as Pub/Sub allows)")
fi
for v in MIN_RETRY_DELAY MAX_RETRY_DELAY; do
  if [[ ! "${!v}" =~ ^[0-9]{1,3}s$ ]] || ((10#${!v%s} > 600)); then
    missing+=("$v (seconds, 0s to 600s, as Pub/Sub allows)")
  fi
done
if [[ "$MIN_RETRY_DELAY$MAX_RETRY_DELAY" =~ ^[0-9]{1,3}s[0-9]{1,3}s$ ]] && ((10#${MIN_RETRY_DELAY%s} > 10#${MAX_RETRY_DELAY%s})); then
  missing+=("MIN_RETRY_DELAY (not above MAX_RETRY_DELAY)")
fi
if [[ ! "$DEAD_LETTER_RETENTION" =~ ^[0-9]+[smhd]$ ]]; then
  missing+=("DEAD_LETTER_RETENTION (a duration such as 7d; 10m to 31d)")
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

# Every topic the tables name (triggers, what each row publishes to, the
# grants), by setting, in table order; each must be set.
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
for g in "${!g_resources[@]}"; do
  if [[ "${g_resources[g]}" == topic:* ]] && ! has "${g_resources[g]#topic:}" "${topics[@]}"; then
    topics+=("${g_resources[g]#topic:}")
  fi
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

# --- the tables, read ---------------------------------------------------------
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
# row prints the index of function $1.
row() {
  local i
  for i in "${!names[@]}"; do
    if [[ "${names[i]}" == "$1" ]]; then echo "$i"; fi
  done
}
# active says whether grant $1 is in force with these settings.
active() {
  local when=${g_whens[$1]} var
  case "$when" in
    -) return 0 ;;
    retired) return 1 ;;
  esac
  var=${when%%=*}
  [[ "${!var:-}" == "${when#*=}" ]]
}
# granted says whether account $1 has an active grant of role $2 (a
# pattern) on resource $3.
granted() {
  local g
  for g in "${!g_accounts[@]}"; do
    # shellcheck disable=SC2053 # $2 is a pattern
    if [[ "${g_accounts[g]}" == "$1" && "${g_roles[g]}" == $2 && "${g_resources[g]}" == "$3" ]] && active "$g"; then
      return 0
    fi
  done
  return 1
}
# listed says whether the grants table has a row, in force or not, for
# account $1 on resource $2.
listed() {
  local g
  for g in "${!g_accounts[@]}"; do
    if [[ "${g_accounts[g]}" == "$1" && "${g_resources[g]}" == "$2" && "${g_whens[g]}" != retired ]]; then return 0; fi
  done
  return 1
}
# secret_in_use says whether secret $1 exists in this configuration: some
# grant in force names it.
secret_in_use() {
  local g
  for g in "${!g_resources[@]}"; do
    if [[ "${g_resources[g]}" == "secret:$1" ]] && active "$g"; then return 0; fi
  done
  return 1
}

# The accounts, the secrets in use and the Firestore databases, in table
# order.
account_names=() secret_ids=() databases=()
for i in "${!names[@]}"; do
  has "${accounts[i]}" "${account_names[@]}" || account_names+=("${accounts[i]}")
done
for g in "${!g_resources[@]}"; do
  active "$g" || continue
  case "${g_resources[g]}" in
    secret:*) has "${g_resources[g]#secret:}" "${secret_ids[@]}" || secret_ids+=("${g_resources[g]#secret:}") ;;
    database:*) has "${g_resources[g]#database:}" "${databases[@]}" || databases+=("${g_resources[g]#database:}") ;;
  esac
done

# --- the gettoken policy --------------------------------------------------------
# Each role names the service account whose tokens it receives
# (service_account). Read with Python's JSON parser: python3, or the Python
# that gcloud itself runs on (its packages bundle one).
policy_reader='
import json, sys

def no_duplicates(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise ValueError("the key %s appears twice" % json.dumps(k))
        seen[k] = v
    return seen

try:
    with open(sys.argv[1], encoding="utf-8") as f:
        policy = json.load(f, object_pairs_hook=no_duplicates)
except (OSError, ValueError) as e:
    sys.exit("not a JSON policy: %s" % e)
roles = policy.get("roles") if isinstance(policy, dict) else None
if not isinstance(roles, dict):
    sys.exit("no \"roles\" object")
for name, rule in roles.items():
    account = rule.get("service_account") if isinstance(rule, dict) else None
    if not isinstance(account, str) or not account:
        sys.exit("role %s names no service_account (the account whose tokens it receives)" % json.dumps(name))
    if not name or any(c.isspace() for c in name + account):
        sys.exit("role %s: white space in its name or service_account" % json.dumps(name))
    print(name + "\t" + account)
'
vended_roles=() vended_accounts=() # one entry per policy role
if [[ -n "$GETTOKEN_POLICY_FILE" ]]; then
  python=$(command -v python3 || gcloud info --format='value(basic.python_location)') || {
    echo "deploy.sh: reading GETTOKEN_POLICY_FILE needs python3 or the Google Cloud CLI (gcloud), which bundles one" >&2
    exit 2
  }
  if ! policy_lines=$("$python" -c "$policy_reader" "$GETTOKEN_POLICY_FILE" 2>&1); then
    echo "deploy.sh: refused: GETTOKEN_POLICY_FILE $GETTOKEN_POLICY_FILE: $policy_lines" >&2; exit 2
  fi
  while IFS=$'\t' read -r role account; do
    [[ -n "$role" ]] || continue
    vended_roles+=("$role") vended_accounts+=("$(tr '[:upper:]' '[:lower:]' <<<"$account")")
  done <<<"$policy_lines"
fi
# The vended accounts, each once, in policy order.
vended=()
for v in "${vended_accounts[@]}"; do
  has "$v" "${vended[@]}" || vended+=("$v")
done

# --- dangerous configurations: refused before anything runs ------------------
refusals=()
refuse() { refusals+=("$*"); }

# The issuer is login's URL, and deploy.sh derives it: a second setting
# could name another.
if [[ -n "${SESSION_ISSUER:-}" ]]; then
  refuse "SESSION_ISSUER is gone: the issuer is now login's URL, LOGIN_ISSUER, which deploy.sh gives every function (from LOGIN_URL, or login's Cloud Run URL). Remove SESSION_ISSUER from your settings; set LOGIN_URL if login has a domain of its own."
fi
if [[ -n "${LOGIN_ISSUER:-}" ]]; then
  refuse "LOGIN_ISSUER is not a setting: deploy.sh sets it to LOGIN_URL, or to login's Cloud Run URL. Set LOGIN_URL instead, to login's URL as clients see it."
fi

case "$GETTOKEN_SOURCE" in
  adc | selfsigned)
    refuse "GETTOKEN_SOURCE=$GETTOKEN_SOURCE is for local runs only: on Google Cloud gettoken would hand out its own identity. Use impersonate: each policy role names the service account whose tokens it receives."
    ;;
  impersonate:*)
    refuse "GETTOKEN_SOURCE=impersonate:<email> is gone: set GETTOKEN_SOURCE=impersonate and name each role's account as service_account in the policy."
    ;;
esac

# Only login signs sessions and holds the signing keys; the others verify
# by its public JWKS.
for i in "${!names[@]}"; do
  if [[ "${sessions[i]}" == sign && "${names[i]}" != login ]]; then
    refuse "function ${names[i]} has sessions=sign: only login may hold the signing keys (session-keys); the others verify by login's JWKS (sessions=verify)."
  fi
  if [[ "${names[i]}" != login && " ${envs[i]} " == *=secret:session-keys\ * ]]; then
    refuse "function ${names[i]} reads the secret session-keys: only login may hold the signing keys."
  fi
done
if [[ " ${names[*]} " != *" login "* || "${sessions[$(row login)]}" != sign ]]; then
  refuse "no login row with sessions=sign: the others verify sessions by login's JWKS."
fi
for g in "${!g_accounts[@]}"; do
  if [[ "${g_resources[g]}" == secret:session-keys && "${g_accounts[g]}" != login ]] && active "$g"; then
    refuse "the grants table gives ${g_accounts[g]} ${g_roles[g]} on session-keys: only login may hold the signing keys."
  fi
done
# The runtime accounts are distinct: an override must not make one function
# run with another's rights (and never with login's keys).
for a in "${account_names[@]}"; do
  for b in "${account_names[@]}"; do
    if [[ "$a" < "$b" && "$(email "$a")" == "$(email "$b")" ]]; then
      refuse "$a and $b run as the same account $(email "$a"): each function account must be its own ($(stem "$a")_SA, $(stem "$b")_SA)."
    fi
  done
done

# Vended identities are never runtime identities.
for r in "${!vended_roles[@]}"; do
  v=${vended_accounts[r]} role=${vended_roles[r]}
  if [[ ! "$v" =~ ^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z0-9-]+\.iam\.gserviceaccount\.com$ ]]; then
    refuse "gettoken policy role $role: service_account $v is not a service account that a project made (NAME@PROJECT.iam.gserviceaccount.com); Google's default accounts hold broad roles."
    continue
  fi
  for a in "${account_names[@]}"; do
    if [[ "$v" == "$(tr '[:upper:]' '[:lower:]' <<<"$(email "$a")")" || "${v%%@*}" == "$a-fn" ]]; then
      refuse "gettoken policy role $role: service_account $v is the runtime account of a function ($a): gettoken must never vend a function's identity. Give the role an account of its own (for example vend-$role@$PROJECT.iam.gserviceaccount.com)."
    fi
  done
done
if [[ "$GETTOKEN_SOURCE" == key && ${#vended[@]} -gt 1 ]]; then
  refuse "GETTOKEN_SOURCE=key mints tokens of the key's one account, but the policy names ${#vended[@]}: ${vended[*]}. Use impersonate."
fi

# What each function needs is granted, and security state has one writer.
needs() { # needs FUNCTION ACCOUNT ROLE-PATTERN RESOURCE WHAT
  granted "$2" "$3" "$4" || refuse "function $1 $5, but the grants table gives $2 no ${3//\*/…} on $4."
}
for i in "${!names[@]}"; do
  fn=${names[i]} a=${accounts[i]}
  read -ra items <<<"${envs[i]}"
  for item in "${items[@]}"; do
    case "$item" in
      *=secret:*) listed "$a" "secret:${item#*=secret:}" || refuse "function $fn reads secret ${item#*=secret:}, but the grants table gives $a no access to it." ;;
      *=topic:*) needs "$fn" "$a" roles/pubsub.publisher "topic:${item#*=topic:}" "publishes there" ;;
    esac
  done
  if [[ "${triggers[i]}" == topic:* ]]; then
    needs "$fn" "$a" roles/eventarc.eventReceiver project "is triggered by a topic"
    needs "$fn" "$a" roles/run.invoker "function:$fn" "is triggered by a topic"
    needs "$fn" pubsub roles/pubsub.subscriber "trigger:$fn" "has its dead letters moved by the Pub/Sub service agent"
    needs "$fn" pubsub roles/pubsub.publisher topic:DEAD_LETTER_TOPIC "has its dead letters moved by the Pub/Sub service agent"
  fi
  needs "$fn" "$a" roles/datastore.user "database:${states[i]}" "keeps its state there"
  if [[ "${sessions[i]}" == sign ]]; then
    needs "$fn" "$a" roles/secretmanager.secretAccessor secret:session-keys "signs sessions"
    needs "$fn" "$a" roles/datastore.user "database:$sessions_database" "revokes sessions"
  else
    needs "$fn" "$a" 'roles/datastore.*' "database:$sessions_database" "checks revocations"
  fi
done
for db in "${databases[@]}"; do
  writers=()
  for g in "${!g_accounts[@]}"; do
    if [[ "${g_resources[g]}" == "database:$db" && "${g_roles[g]}" != roles/datastore.viewer ]] && active "$g" &&
      ! has "${g_accounts[g]}" "${writers[@]}"; then
      writers+=("${g_accounts[g]}")
    fi
  done
  if ((${#writers[@]} > 1)); then
    refuse "the grants table lets ${writers[*]} write the database $db: security state is written only by its owner (the others get roles/datastore.viewer)."
  fi
  if [[ "$db" == "$sessions_database" && "${writers[*]}" != login ]]; then
    refuse "the grants table lets ${writers[*]:-nobody} write the revocations ($db): only login writes them."
  fi
done
# Dead letters go to a topic of their own: on a trigger's topic they would
# be delivered again, forever; on an output, they would pass for results.
for topic in "${topics[@]}"; do
  if [[ "$topic" != DEAD_LETTER_TOPIC && "${!topic}" == "$DEAD_LETTER_TOPIC" ]]; then
    refuse "DEAD_LETTER_TOPIC and $topic both name $DEAD_LETTER_TOPIC: dead letters need a topic of their own, or they are delivered again or pass for results."
  fi
done
for g in "${!g_accounts[@]}"; do
  if [[ "${g_resources[g]}" == project && "${g_roles[g]}" == roles/datastore.* ]] && active "$g"; then
    refuse "the grants table gives ${g_accounts[g]} ${g_roles[g]} on the whole project: grant it on database:ID."
  fi
done
# Each instance's size: Cloud Run serves more than one request at once only
# with a whole vCPU or more.
for i in "${!names[@]}"; do
  fn=${names[i]}
  cpu=$(fn_setting "$fn" CPU "${cpus[i]}") concurrency=$(fn_setting "$fn" CONCURRENCY "${concurrencies[i]}")
  if [[ ! "$cpu" =~ ^([0-9]+|[0-9]*\.[0-9]+)$ ]]; then
    refuse "function $fn: cpu $cpu is not a number of vCPUs (1, 2, .333…)."
  elif [[ ! "$concurrency" =~ ^[1-9][0-9]{0,3}$ ]] || ((concurrency > 1000)); then
    refuse "function $fn: concurrency $concurrency is not 1 to 1000 requests at once."
  elif ((concurrency > 1)) && [[ ! "$cpu" =~ ^0*[1-9] ]]; then
    refuse "function $fn serves $concurrency requests at once with cpu $cpu: Cloud Run needs a whole vCPU (cpu 1 or more) for more than one."
  fi
done

if ((${#refusals[@]})); then
  printf 'deploy.sh: refused: %s\n' "${refusals[@]}" >&2
  exit 2
fi
# Each function's upload is its own packages, which go list names.
if ! $dry_run && [[ " ${targets[*]} " != " setup " ]] && ! command -v go >/dev/null; then
  echo "deploy.sh: deploying a function needs Go (go list names the packages its upload holds): https://go.dev/dl/" >&2
  exit 2
fi
if [[ -z "$GETTOKEN_POLICY_FILE" ]]; then
  echo "deploy.sh: WARNING: no GETTOKEN_POLICY_FILE: gettoken refuses every request, and setup grants it no account to vend." >&2
fi
if [[ "$GETTOKEN_SOURCE" == key ]]; then
  echo "deploy.sh: WARNING: GETTOKEN_SOURCE=key: the key's service account must not be the runtime account of any function ($(for a in "${account_names[@]}"; do printf '%s ' "$(email "$a")"; done)). deploy.sh cannot read the key; gettoken refuses to start if it is. Prefer impersonate: no key exists." >&2
fi

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

# ask prints command "${@:3}", then sets the variable named $1 to what it
# prints; a dry run, which cannot know, sets it to the placeholder $2. It
# fails as the command does.
ask() {
  local -n ask_answer=$1
  local placeholder=$2
  shift 2
  printf '%q' "$1"
  printf ' %q' "${@:2}"
  printf '\n'
  # shellcheck disable=SC2034 # a reference: sets the caller's variable
  if $dry_run; then
    ask_answer=$placeholder
    return 0
  fi
  # shellcheck disable=SC2034 # a reference: sets the caller's variable
  ask_answer=$("$@")
}

gcloud=(gcloud --project="$PROJECT" --quiet)

# The project's number, read once, when something it names is needed: the
# Pub/Sub service agent, login's Cloud Run URL.
project_number=""
find_project_number() {
  [[ -z "$project_number" ]] || return 0
  echo "# The project's number names the Pub/Sub service agent and login's URL:"
  ask project_number PROJECT_NUMBER "${gcloud[@]}" projects describe "$PROJECT" --format='value(projectNumber)'
  if [[ ! "$project_number" =~ ^[0-9]+$ ]] && ! $dry_run; then
    echo "deploy.sh: project $PROJECT has no number ($project_number)" >&2
    exit 1
  fi
}

# The Pub/Sub service agent (the grants table's account pubsub).
pubsub_agent=""
find_pubsub_agent() {
  [[ -z "$pubsub_agent" ]] || return 0
  find_project_number
  pubsub_agent="service-$project_number@gcp-sa-pubsub.iam.gserviceaccount.com"
}

# member prints the IAM member of grants-table account $1 (for pubsub,
# after find_pubsub_agent).
member() {
  if [[ "$1" == pubsub ]]; then
    echo "serviceAccount:$pubsub_agent"
  else
    echo "serviceAccount:$(email "$1")"
  fi
}

# condition prints the IAM condition that narrows a project binding to
# the Firestore database $1 (Firestore's documented form).
condition() {
  printf 'expression=resource.name=="projects/%s/databases/%s",title=database %s' "$PROJECT" "$1" "$1"
}

# grant makes grant $1 of the table; function and trigger grants wait for
# the deploy.
grant() {
  local g=$1 member role=${g_roles[$1]} res=${g_resources[$1]} v
  if [[ "${g_accounts[g]}" == pubsub ]]; then find_pubsub_agent; fi
  member=$(member "${g_accounts[g]}")
  echo "# ${g_accounts[g]}: ${g_whys[g]}"
  case "$res" in
    secret:*) run "${gcloud[@]}" secrets add-iam-policy-binding "${res#secret:}" --member="$member" --role="$role" ;;
    topic:*)
      v=${res#topic:}
      run "${gcloud[@]}" pubsub topics add-iam-policy-binding "${!v}" --member="$member" --role="$role"
      ;;
    database:*)
      run "${gcloud[@]}" projects add-iam-policy-binding "$PROJECT" --member="$member" --role="$role" \
        --condition="$(condition "${res#database:}")"
      ;;
    project) run "${gcloud[@]}" projects add-iam-policy-binding "$PROJECT" --member="$member" --role="$role" --condition=None ;;
    vended)
      for v in "${vended[@]}"; do
        run "${gcloud[@]}" iam service-accounts add-iam-policy-binding "$v" --member="$member" --role="$role"
      done
      ;;
  esac
}

# bound says whether the IAM policy that get-iam-policy command "${@:3}"
# reads binds role $1 to member $2 without a condition. The policies read
# are kept, by command, for the rest of the run.
declare -A policies=()
bound() {
  local role=$1 member=$2 key
  shift 2
  key="$*"
  if [[ -z "${policies[$key]+set}" ]]; then
    policies[$key]=$("$@" --flatten='bindings[].members' \
      --format='value[separator="|"](bindings.role,bindings.members,bindings.condition.expression)')
  fi
  awk -F'|' -v r="$role" -v m="$member" '$1 == r && $2 == m && $3 == "" { found = 1 } END { exit !found }' <<<"${policies[$key]}"
}

# unbind removes retired grant $1 where it is still found.
unbind() {
  local g=$1 member role=${g_roles[$1]} res=${g_resources[$1]} get remove
  if [[ "${g_accounts[g]}" == pubsub ]]; then find_pubsub_agent; fi
  member=$(member "${g_accounts[g]}")
  case "$res" in
    secret:*)
      secret_in_use "${res#secret:}" || return 0
      get=("${gcloud[@]}" secrets get-iam-policy "${res#secret:}")
      remove=("${gcloud[@]}" secrets remove-iam-policy-binding "${res#secret:}" --member="$member" --role="$role")
      ;;
    project)
      get=("${gcloud[@]}" projects get-iam-policy "$PROJECT")
      remove=("${gcloud[@]}" projects remove-iam-policy-binding "$PROJECT" --member="$member" --role="$role" --condition=None)
      ;;
    *) echo "deploy.sh: cannot remove a retired grant on $res" >&2; exit 2 ;;
  esac
  if $dry_run; then
    printf '# if still granted (%s):\n' "${g_whys[g]}"
  elif ! bound "$role" "$member" "${get[@]}"; then
    return 0
  else
    printf '# %s still has it (%s):\n' "${g_accounts[g]}" "${g_whys[g]}"
  fi
  run "${remove[@]}"
}

# warn_unlisted warns of project roles of the function accounts that the
# grants table does not list: setup does not remove what it did not grant,
# but a function account holds nothing else.
warn_unlisted() {
  local lines role member cond a g ok
  $dry_run && return 0
  lines=$("${gcloud[@]}" projects get-iam-policy "$PROJECT" --flatten='bindings[].members' \
    --format='value[separator="|"](bindings.role,bindings.members,bindings.condition.expression)')
  while IFS='|' read -r role member cond; do
    for a in "${account_names[@]}"; do
      [[ "$member" == "serviceAccount:$(email "$a")" ]] || continue
      ok=false
      for g in "${!g_accounts[@]}"; do
        if [[ "${g_accounts[g]}" != "$a" || "${g_roles[g]}" != "$role" ]] || ! active "$g"; then continue; fi
        case "${g_resources[g]}" in
          project) [[ -z "$cond" ]] && ok=true ;;
          database:*) [[ "$cond" == "resource.name==\"projects/$PROJECT/databases/${g_resources[g]#database:}\"" ]] && ok=true ;;
        esac
      done
      $ok || echo "deploy.sh: WARNING: $member has $role on the project${cond:+ (if $cond)}, which the grants table does not list: remove it unless you know why." >&2
    done
  done <<<"$lines"
}

setup() {
  local i g v db topic id account roles
  echo "# APIs"
  run "${gcloud[@]}" services enable cloudfunctions.googleapis.com run.googleapis.com cloudbuild.googleapis.com \
    artifactregistry.googleapis.com eventarc.googleapis.com pubsub.googleapis.com secretmanager.googleapis.com \
    firestore.googleapis.com iamcredentials.googleapis.com logging.googleapis.com monitoring.googleapis.com

  echo "# Service accounts, one per function, to run as"
  for account in "${account_names[@]}"; do
    exists "${gcloud[@]}" iam service-accounts describe "$(sa "$account")" ||
      run "${gcloud[@]}" iam service-accounts create "$account-fn" --display-name="IMPO $account function"
  done
  if [[ "$GETTOKEN_SOURCE" == impersonate && ${#vended[@]} -gt 0 ]]; then
    echo "# Service accounts that gettoken vends (the policy's service_account), those of this project"
    for v in "${vended[@]}"; do
      [[ "$v" == *"@$PROJECT.iam.gserviceaccount.com" ]] || continue
      roles=()
      for i in "${!vended_accounts[@]}"; do
        if [[ "${vended_accounts[i]}" == "$v" ]]; then roles+=("${vended_roles[i]}"); fi
      done
      exists "${gcloud[@]}" iam service-accounts describe "$v" ||
        run "${gcloud[@]}" iam service-accounts create "${v%%@*}" --display-name="IMPO gettoken vends it: ${roles[*]}"
    done
  fi

  echo "# Topics"
  for topic in "${topics[@]}"; do
    exists "${gcloud[@]}" pubsub topics describe "${!topic}" || run "${gcloud[@]}" pubsub topics create "${!topic}"
  done
  dead_letter_subscription

  echo "# Secrets (empty, except clients: publish them with go run ./cmd/admin secret push)"
  for id in "${secret_ids[@]}"; do
    exists "${gcloud[@]}" secrets describe "$id" && continue
    if [[ -n "${secret_first[$id]:-}" ]]; then
      echo "# $id starts with a first version, read from standard input: ${secret_first[$id]}"
      run "${gcloud[@]}" secrets create "$id" --replication-policy=automatic --data-file=- <<<"${secret_first[$id]}"
    else
      run "${gcloud[@]}" secrets create "$id" --replication-policy=automatic
    fi
  done

  echo "# Firestore: one database per owner of state, entries expire by a TTL policy"
  for db in "${databases[@]}"; do
    exists "${gcloud[@]}" firestore databases describe --database="$db" ||
      run "${gcloud[@]}" firestore databases create --database="$db" --location="$REGION" --type=firestore-native \
        --delete-protection
    run "${gcloud[@]}" firestore fields ttls update expires --database="$db" --collection-group="$STATE_COLLECTION" \
      --enable-ttl --async
  done

  echo "# IAM: the grants table, and nothing else"
  for g in "${!g_accounts[@]}"; do
    if active "$g" && [[ "${g_resources[g]}" != function:* && "${g_resources[g]}" != trigger:* ]]; then grant "$g"; fi
  done

  echo "# Dead letters of the deployed triggers (a function deployed now gets them at its deploy)"
  for i in "${!names[@]}"; do
    if [[ "${triggers[i]}" == topic:* ]] && ! has "${names[i]}" "${targets[@]}"; then
      dead_letters "${names[i]}" if-deployed
    fi
  done

  echo "# Log-based metrics: counters in Cloud Monitoring, logging.googleapis.com/user/METRIC"
  for i in "${!m_names[@]}"; do
    log_metric "$i"
  done
}

# dead_letter_subscription keeps the dead letters in DEAD_LETTER_SUBSCRIPTION,
# made or brought up to date: for DEAD_LETTER_RETENTION, never expiring
# (Pub/Sub deletes a subscription left unread for 31 days by default), with
# 10 minutes to look at a message pulled before it comes back.
dead_letter_subscription() {
  local topic attached
  local settings=(--ack-deadline=600 --message-retention-duration="$DEAD_LETTER_RETENTION" --expiration-period=never)
  topic="projects/$PROJECT/topics/$DEAD_LETTER_TOPIC"
  echo "# Dead letters wait in $DEAD_LETTER_SUBSCRIPTION, to be read and replayed (README)"
  if $dry_run; then
    printf '# if missing:\n'
  elif attached=$("${gcloud[@]}" pubsub subscriptions describe "$DEAD_LETTER_SUBSCRIPTION" --format='value(topic)' 2>/dev/null); then
    if [[ "$attached" != "$topic" ]]; then
      echo "deploy.sh: the subscription $DEAD_LETTER_SUBSCRIPTION reads $attached, not the dead-letter topic: set DEAD_LETTER_SUBSCRIPTION to a name of its own" >&2
      exit 1
    fi
    run "${gcloud[@]}" pubsub subscriptions update "$DEAD_LETTER_SUBSCRIPTION" "${settings[@]}"
    return
  fi
  run "${gcloud[@]}" pubsub subscriptions create "$DEAD_LETTER_SUBSCRIPTION" --topic="$DEAD_LETTER_TOPIC" "${settings[@]}"
  if $dry_run; then
    printf '# if present:\n'
    run "${gcloud[@]}" pubsub subscriptions update "$DEAD_LETTER_SUBSCRIPTION" "${settings[@]}"
  fi
}

# dead_letters has the trigger of function $1 send to DEAD_LETTER_TOPIC what
# it fails to deliver MAX_DELIVERY_ATTEMPTS times, with a growing delay
# between attempts. Eventarc makes the trigger's push subscription with the
# function, and names it: it is found through the trigger, the grants table
# (trigger:FUNCTION) lets the Pub/Sub service agent take messages off it,
# and its dead-letter and retry policies are set. A redeploy that remade
# the trigger would lose them: every deploy sets them again. With
# if-deployed ($2), a function not deployed yet is left to its deploy.
dead_letters() {
  local fn=$1 trigger subscription g
  echo "# $fn: what its trigger fails to deliver $MAX_DELIVERY_ATTEMPTS times goes to $DEAD_LETTER_TOPIC"
  if [[ "${2:-}" == if-deployed ]]; then
    if $dry_run; then printf '# if deployed:\n'; fi
    if ! ask trigger TRIGGER "${gcloud[@]}" functions describe "$fn" --gen2 --region="$REGION" \
      --format='value(eventTrigger.trigger)' 2>/dev/null || [[ -z "$trigger" ]]; then
      echo "# $fn is not deployed: its deploy will do this"
      return 0
    fi
  else
    ask trigger TRIGGER "${gcloud[@]}" functions describe "$fn" --gen2 --region="$REGION" --format='value(eventTrigger.trigger)'
  fi
  [[ -n "$trigger" ]] || { echo "deploy.sh: function $fn has no Eventarc trigger" >&2; exit 1; }
  ask subscription SUBSCRIPTION "${gcloud[@]}" eventarc triggers describe "$trigger" --format='value(transport.pubsub.subscription)'
  [[ -n "$subscription" ]] || { echo "deploy.sh: the trigger $trigger of $fn has no Pub/Sub subscription" >&2; exit 1; }
  for g in "${!g_accounts[@]}"; do
    if [[ "${g_resources[g]}" == "trigger:$fn" ]] && active "$g"; then
      if [[ "${g_accounts[g]}" == pubsub ]]; then find_pubsub_agent; fi
      echo "# ${g_accounts[g]}: ${g_whys[g]}"
      run "${gcloud[@]}" pubsub subscriptions add-iam-policy-binding "$subscription" --member="$(member "${g_accounts[g]}")" \
        --role="${g_roles[g]}"
    fi
  done
  run "${gcloud[@]}" pubsub subscriptions update "$subscription" --dead-letter-topic="$DEAD_LETTER_TOPIC" \
    --max-delivery-attempts="$MAX_DELIVERY_ATTEMPTS" --min-retry-delay="$MIN_RETRY_DELAY" --max-retry-delay="$MAX_RETRY_DELAY"
}

# log_metric makes the log-based metric of metrics-table row $1, or brings
# its filter and description up to date. The function's logs reach Cloud
# Logging as a Cloud Run service of the function's name.
log_metric() {
  local m=$1 filter what
  filter="resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${m_functions[m]}\""
  filter+=" AND jsonPayload.message=\"${m_messages[m]}\""
  if [[ "${m_outcomes[m]}" != - ]]; then
    local field=${m_outcomes[m]%%=*} values value any=""
    IFS=, read -ra values <<<"${m_outcomes[m]#*=}"
    for value in "${values[@]}"; do
      any+="${any:+ OR }jsonPayload.$field=\"$value\""
    done
    if ((${#values[@]} > 1)); then any="($any)"; fi
    filter+=" AND $any"
  fi
  what=("${m_names[m]}" --description="IMPO ${m_functions[m]}: ${m_whats[m]}" --log-filter="$filter")
  if $dry_run; then
    printf '# if missing:\n'
    run "${gcloud[@]}" logging metrics create "${what[@]}"
    printf '# if present:\n'
    run "${gcloud[@]}" logging metrics update "${what[@]}"
  elif "${gcloud[@]}" logging metrics describe "${m_names[m]}" >/dev/null 2>&1; then
    run "${gcloud[@]}" logging metrics update "${what[@]}"
  else
    run "${gcloud[@]}" logging metrics create "${what[@]}"
  fi
}

# retire removes what earlier versions granted. It runs last, after the
# functions named with setup are deployed: the old code keeps its rights
# until the new code, which needs only the table's, has replaced it.
retire() {
  local g
  echo "# Grants of earlier versions, removed where found"
  for g in "${!g_accounts[@]}"; do
    if [[ "${g_whens[g]}" == retired ]]; then unbind "$g"; fi
  done
  warn_unlisted
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

# login_issuer sets LOGIN_ISSUER to login's URL: the iss of every
# session, which login signs and the others expect, the base of login's
# endpoints (its discovery documents, the browser flow), and where the
# verifiers read its public keys (LOGIN_ISSUER/jwks). It is LOGIN_URL when
# set (a domain of login's own), else login's deterministic Cloud Run URL,
# https://SERVICE-PROJECT_NUMBER.REGION.run.app, which exists from login's
# first deploy on: every function, login included, knows the issuer before
# any of them is deployed. A dry run uses the number's placeholder.
LOGIN_ISSUER=""
login_issuer() {
  local label
  [[ -z "$LOGIN_ISSUER" ]] || return 0
  if [[ -n "$LOGIN_URL" ]]; then
    LOGIN_ISSUER=${LOGIN_URL%/}
    return 0
  fi
  find_project_number
  label="login-$project_number"
  if ((${#label} > 63)); then
    # Cloud Run gives a deterministic URL only to a DNS label this short.
    echo "deploy.sh: login's Cloud Run URL would need the DNS label $label, over 63 characters: Cloud Run gives it none; set LOGIN_URL" >&2
    exit 1
  fi
  LOGIN_ISSUER="https://$label.$REGION.run.app"
  echo "# login's URL, the issuer of every session: $LOGIN_ISSUER"
}

# deploy deploys the function of table row $1.
deploy() {
  local i=$1 fn=${names[$1]} entry=${entries[$1]} sa_email ingress item var src id g
  sa_email=$(email "${accounts[i]}")
  login_issuer
  local env=("GOOGLE_CLOUD_PROJECT=$PROJECT" "SECRETS_SOURCE=secretmanager" "STATE_STORE=firestore"
    "FIRESTORE_DATABASE=${states[i]}" "FIRESTORE_SESSIONS_DATABASE=$sessions_database"
    "STATE_COLLECTION=$STATE_COLLECTION" "LOGIN_ISSUER=$LOGIN_ISSUER" "SESSION_AUDIENCE=$SESSION_AUDIENCE"
    "TRUSTED_PROXY_HOPS=1")
  local mounts=() extra=() trigger=() items=()
  if [[ "${sessions[i]}" == sign ]]; then
    env+=("$(secret_env SESSION_KEYS_SECRET session-keys)")
    mounts+=("/mnt/session-keys:/value=session-keys:latest")
  else
    env+=("SESSION_JWKS_URL=$LOGIN_ISSUER/jwks")
  fi
  read -ra items <<<"${envs[i]}"
  for item in "${items[@]}"; do
    var=${item%%=*} src=${item#*=}
    case "$src" in
      secret:*)
        id=${src#secret:}
        if granted "${accounts[i]}" '*' "secret:$id"; then
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
  # GOOGLE_GOLDFLAGS goes to go build as -ldflags (Google's Go buildpack,
  # cloud.google.com/docs/buildpacks/go): -s -w leave out the symbol table
  # and DWARF, a third of the binary; stack traces keep their names and
  # lines (they come from pclntab, which stays).
  run "${gcloud[@]}" functions deploy "$fn" --gen2 --runtime=go126 --region="$REGION" --source=".deploy/$fn" \
    --entry-point="$entry" "${trigger[@]}" --service-account="$sa_email" --set-build-env-vars="GOOGLE_GOLDFLAGS=-s -w" \
    --memory="$(fn_setting "$fn" MEMORY "${memories[i]}")" --cpu="$(fn_setting "$fn" CPU "${cpus[i]}")" \
    --concurrency="$(fn_setting "$fn" CONCURRENCY "${concurrencies[i]}")" --timeout="$(fn_setting "$fn" TIMEOUT "${timeouts[i]}")" \
    --min-instances="$(fn_setting "$fn" MIN_INSTANCES "${mins[i]}")" \
    --max-instances="$(fn_setting "$fn" MAX_INSTANCES "${maxes[i]}")" \
    --ingress-settings="$ingress" --env-vars-file="$file" "${extra[@]}"
  for g in "${!g_accounts[@]}"; do
    if [[ "${g_resources[g]}" == "function:$fn" ]] && active "$g"; then
      echo "# ${g_accounts[g]}: ${g_whys[g]}"
      run "${gcloud[@]}" functions add-invoker-policy-binding "$fn" --region="$REGION" \
        --member="serviceAccount:$(email "${g_accounts[g]}")"
    fi
  done
  if [[ "${triggers[i]}" == topic:* ]]; then dead_letters "$fn"; fi
}

# stage_source stages the upload of table row $1 in .deploy/FUNCTION: the
# files of the row's package and of every package of this module that it
# imports (go list -deps, for linux/amd64 as Cloud Build builds), the data
# they embed, go.mod and go.sum, and a root package of its own that
# imports the function's package alone.
#
# Why a root package per function: the Go buildpack (google.go.functions-
# framework) builds a generated main that imports the module's root
# package, whatever GOOGLE_FUNCTION_SOURCE or GOOGLE_BUILDABLE say (it sets
# GOOGLE_BUILDABLE itself; GoogleCloudPlatform/buildpacks, cmd/go/
# functions_framework/lib/lib.go). The checkout's backend.go imports every
# function, for cmd/local; deployed with it, each function would link and
# initialise all the others' dependencies. The root also imports the
# framework's functions package: that is how the buildpack knows that the
# entry points register themselves in init.
#
# Every file must also be one that gcloud would upload by .gcloudignore,
# the allow-list of what may leave this machine (gcloud meta
# list-files-for-upload .): the upload is what both let through, and a
# file the build needs that .gcloudignore keeps out stops the deploy. Why
# a folder of copies, not --source=.: gcloud functions deploy zips a folder
# testing each sub-folder as if it were a file, so an allow-list cannot let
# a folder back in, and its files would be lost.
allowed=""
stage_source() {
  local fn=${names[$1]} pkg=${packages[$1]} dir=".deploy/${names[$1]}" module root files f
  if $dry_run; then
    printf '# %s would hold: go.mod, go.sum, a root package importing only ./%s, and the files of\n' "$dir" "$pkg"
    printf '#   GOOS=linux GOARCH=amd64 go list -deps ./%s (those of this module, with what they embed)\n' "$pkg"
    printf '#   that gcloud meta list-files-for-upload . lets through\n'
    return
  fi
  if [[ -z "$allowed" ]]; then
    allowed=$("${gcloud[@]}" meta list-files-for-upload .)
    [[ -n "$allowed" ]] || { echo "deploy.sh: .gcloudignore lets nothing through" >&2; exit 1; }
  fi
  module=$(go list -m) root=$(go list -m -f '{{.Dir}}')
  # shellcheck disable=SC2016 # a go list template, not a shell expansion
  files=$(GOOS=linux GOARCH=amd64 go list -deps -f '{{if and .Module .Module.Main}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}
{{end}}{{range .CgoFiles}}{{$d}}/{{.}}
{{end}}{{range .SFiles}}{{$d}}/{{.}}
{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}
{{end}}{{end}}' "./$pkg") || { echo "deploy.sh: go list -deps ./$pkg failed: function $fn cannot be built" >&2; exit 1; }
  files=$(printf '%s/go.mod\n%s/go.sum\n%s' "$root" "$root" "$files")
  rm -rf "$dir"
  mkdir -p "$dir"
  while IFS= read -r f; do
    [[ -n "$f" ]] || continue
    f=${f#"$root/"}
    if ! grep -qxF -- "$f" <<<"$allowed"; then
      echo "deploy.sh: function $fn needs $f, which .gcloudignore keeps out of the upload: let it in there (an embedded file is let in by name)" >&2
      exit 1
    fi
    mkdir -p "$dir/$(dirname "$f")"
    cp "$f" "$dir/$f"
  done <<<"$files"
  cat >"$dir/backend.go" <<EOF
// Code generated by deploy.sh for the function $fn. DO NOT EDIT.

// Package backend is the root package that the Go buildpack builds for
// the function $fn: it imports that function's package alone, whose init
// registers its entry points, so that the binary links only what it uses.
package backend

import (
	_ "github.com/GoogleCloudPlatform/functions-framework-go/functions"

	_ "$module/$pkg"
)
EOF
  printf '# %s holds %d files: %s, what it imports from this module, go.mod, go.sum and its own root package\n' \
    "$dir" "$(find "$dir" -type f | wc -l)" "$pkg"
}

# Setup first, then the functions in table order (login before the
# verifiers, which read its keys at its URL), then setup's removal of old
# grants.
if has setup "${targets[@]}"; then
  setup
fi
for i in "${!names[@]}"; do
  has "${names[i]}" "${targets[@]}" || continue
  stage_source "$i"
  deploy "$i"
done
if has setup "${targets[@]}"; then
  retire
fi
