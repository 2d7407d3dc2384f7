// The shell scripts keepalived runs. POSIX sh and curl only: nothing else is installed on the
// droplets for them, and nothing is downloaded at run time. Every value interpolated here has
// passed a guard that admits no quote, space or shell metacharacter, and sits in single quotes.
import * as guard from './guard.ts';

/** keepalived's check: HAProxy answers its health endpoint on loopback. */
export function renderCheckScript(healthPort: number, healthURI: string): string {
  const url = `http://127.0.0.1:${guard.port('settings.healthPort', healthPort)}${guard.pathPrefix('healthURI', healthURI)}`;
  return `#!/bin/sh
# Rendered by halb. keepalived runs this at every check interval: it succeeds when HAProxy
# answers its health endpoint. A second quick try absorbs one slow answer; a dead HAProxy
# refuses both at once, so the node leaves MASTER within one check interval.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
curl -fsS -o /dev/null -m 0.4 '${url}' 2>/dev/null && exit 0
exec curl -fsS -o /dev/null -m 0.4 '${url}' 2>/dev/null
`;
}

export interface NotifyScriptInput {
  stateFile: string;
  failoverScript: string;
}

export function renderNotifyScript(input: NotifyScriptInput): string {
  const stateFile = guard.filePath('paths.vrrpStateFile', input.stateFile);
  const failover = guard.filePath('paths.failoverScript', input.failoverScript);
  return `#!/bin/sh
# Rendered by halb. keepalived runs this on every VRRP state change: it records the state for
# the operator and, on MASTER, moves the reserved IP here.
set -u
PATH=/usr/sbin:/usr/bin:/sbin:/bin
STATE_FILE='${stateFile}'

state="\${1:-}"
case "$state" in
  MASTER|BACKUP|FAULT|STOP) ;;
  *) echo "halb-notify: unknown state '$state'" >&2; exit 2 ;;
esac

# Written whole and renamed, so a reader never sees a partial word.
mkdir -p "$(dirname "$STATE_FILE")"
printf '%s\\n' "$state" > "$STATE_FILE.tmp" && mv -f "$STATE_FILE.tmp" "$STATE_FILE"

if [ "$state" = MASTER ]; then
  exec '${failover}'
fi
exit 0
`;
}

export interface FailoverScriptInput {
  floatingIP: string;
  apiBaseURL: string;
  metadataBaseURL: string;
  tokenFile: string;
  logFile: string;
  stateFile: string;
  deadlineSeconds: number;
}

export function renderFailoverScript(input: FailoverScriptInput): string {
  const ip = guard.ipv4('observed.floatingIP', input.floatingIP);
  const api = guard.httpURL('settings.apiBaseURL', input.apiBaseURL);
  const metadata = guard.httpURL('settings.metadataBaseURL', input.metadataBaseURL);
  const tokenFile = guard.filePath('paths.failoverToken', input.tokenFile);
  const logFile = guard.filePath('paths.failoverLog', input.logFile);
  const stateFile = guard.filePath('paths.vrrpStateFile', input.stateFile);
  const deadline = guard.integer('settings.failoverDeadlineSeconds', input.deadlineSeconds, 1, 3600);
  return `#!/bin/sh
# Rendered by halb. Moves the reserved IP to this droplet through the DigitalOcean API.
# keepalived runs it on MASTER (through the notify script) and when a MASTER hears a
# lower-priority advert after a split brain. The token is read from a root-only file and
# handed to curl on stdin: it never appears on a command line or in an environment.
set -u
PATH=/usr/sbin:/usr/bin:/sbin:/bin
RESERVED_IP='${ip}'
API_BASE='${api}'
METADATA_BASE='${metadata}'
TOKEN_FILE='${tokenFile}'
LOG_FILE='${logFile}'
STATE_FILE='${stateFile}'
DEADLINE_SECONDS=${deadline}

RUN_DIR="$(dirname "$STATE_FILE")"
LOCK_DIR="$RUN_DIR/failover.lock"
RESPONSE="$RUN_DIR/failover.response"
START=$(date +%s)

log() {
  line="$(date -u +%Y-%m-%dT%H:%M:%SZ) halb-failover[$$]: $*"
  printf '%s\\n' "$line" >> "$LOG_FILE" 2>/dev/null
  printf '%s\\n' "$line" >&2
}

elapsed() {
  echo $(( $(date +%s) - START ))
}

mkdir -p "$RUN_DIR"
# One run at a time: notify_master and notify_master_rx_lower_pri can fire together.
if ! mkdir "$LOCK_DIR" 2>/dev/null; then
  holder=$(cat "$LOCK_DIR/pid" 2>/dev/null || echo)
  if [ -n "$holder" ] && kill -0 "$holder" 2>/dev/null; then
    log "another run (pid $holder) is in progress; exiting"
    exit 0
  fi
  rm -rf "$LOCK_DIR"
  mkdir "$LOCK_DIR" || { log "could not take $LOCK_DIR; exiting"; exit 1; }
fi
echo $$ > "$LOCK_DIR/pid"
trap 'rm -rf "$LOCK_DIR" "$RESPONSE"' EXIT
trap 'exit 1' INT TERM

TOKEN=''
if [ -r "$TOKEN_FILE" ]; then
  IFS= read -r TOKEN < "$TOKEN_FILE" || true
fi
if [ -z "$TOKEN" ]; then
  log "no token in $TOKEN_FILE; cannot move $RESERVED_IP"
  exit 1
fi

# metadata PATH: prints the answer; fails on any error.
metadata() {
  curl -fsS -m 2 "$METADATA_BASE/metadata/v1/$1" 2>/dev/null
}

# api METHOD PATH [BODY]: sets STATUS (000 on a network error) and leaves the body in $RESPONSE.
api() {
  if [ -n "\${3:-}" ]; then
    STATUS=$(printf 'header = "Authorization: Bearer %s"\\n' "$TOKEN" |
      curl -sS -m 10 -o "$RESPONSE" -w '%{http_code}' -K - -X "$1" \\
        -H 'Content-Type: application/json' --data "$3" "$API_BASE$2" 2>/dev/null) || STATUS=000
  else
    STATUS=$(printf 'header = "Authorization: Bearer %s"\\n' "$TOKEN" |
      curl -sS -m 10 -o "$RESPONSE" -w '%{http_code}' -K - -X "$1" "$API_BASE$2" 2>/dev/null) || STATUS=000
  fi
}

# The id and status of the action object in $RESPONSE (an action has no other "id" or "status").
action_id() {
  tr -d '\\n' < "$RESPONSE" | sed -n 's/.*"action"[ ]*:[ ]*{.*"id"[ ]*:[ ]*\\([0-9][0-9]*\\).*/\\1/p'
}
action_status() {
  tr -d '\\n' < "$RESPONSE" | sed -n 's/.*"action"[ ]*:[ ]*{.*"status"[ ]*:[ ]*"\\([a-z-]*\\)".*/\\1/p'
}

still_master() {
  [ ! -f "$STATE_FILE" ] || [ "$(cat "$STATE_FILE" 2>/dev/null)" = MASTER ]
}

DELAY=1
# backoff REASON: waits, doubling up to 8 s; exits once the deadline has passed.
backoff() {
  if [ "$(elapsed)" -ge "$DEADLINE_SECONDS" ]; then
    log "gave up after $(elapsed)s: $1"
    exit 1
  fi
  log "$1; retrying in \${DELAY}s"
  sleep "$DELAY"
  DELAY=$(( DELAY * 2 ))
  if [ "$DELAY" -gt 8 ]; then DELAY=8; fi
}

log "started: moving $RESERVED_IP here"
while :; do
  DROPLET_ID=$(metadata id) || DROPLET_ID=''
  case "$DROPLET_ID" in
    ''|*[!0-9]*) backoff "metadata service gave no droplet id"; continue ;;
  esac
  break
done
log "droplet id is $DROPLET_ID"

holds_ip() {
  [ "$(metadata reserved_ip/ipv4/active)" = true ] &&
    [ "$(metadata reserved_ip/ipv4/ip_address)" = "$RESERVED_IP" ]
}

while :; do
  if ! still_master; then
    log "no longer MASTER ($(cat "$STATE_FILE" 2>/dev/null)); stopped"
    exit 0
  fi
  if holds_ip; then
    log "droplet $DROPLET_ID already holds $RESERVED_IP; nothing to do"
    exit 0
  fi
  log "assigning $RESERVED_IP to droplet $DROPLET_ID"
  api POST "/v2/reserved_ips/$RESERVED_IP/actions" "{\\"type\\":\\"assign\\",\\"droplet_id\\":$DROPLET_ID}"
  case "$STATUS" in
    2??) ;;
    422) backoff "API answered 422 (pending event or already assigned)"; continue ;;
    429) backoff "API answered 429 (rate limited)"; continue ;;
    5??) backoff "API answered $STATUS"; continue ;;
    000) backoff "API unreachable"; continue ;;
    *) log "API refused the assignment with $STATUS: $(head -c 300 "$RESPONSE" 2>/dev/null)"; exit 1 ;;
  esac
  ACTION_ID=$(action_id)
  if [ -z "$ACTION_ID" ]; then
    backoff "API answered $STATUS without an action id"
    continue
  fi
  log "assign action $ACTION_ID accepted ($STATUS)"
  DELAY=1
  while :; do
    api GET "/v2/reserved_ips/$RESERVED_IP/actions/$ACTION_ID"
    case "$STATUS" in
      2??) ;;
      429|5??|000) backoff "polling action $ACTION_ID: API answered $STATUS"; continue ;;
      *) log "polling action $ACTION_ID: API answered $STATUS"; exit 1 ;;
    esac
    ACTION_STATUS=$(action_status)
    case "$ACTION_STATUS" in
      completed) log "action $ACTION_ID completed: $RESERVED_IP is on droplet $DROPLET_ID"; exit 0 ;;
      errored) log "action $ACTION_ID errored"; break ;;
      *)
        if [ "$(elapsed)" -ge "$DEADLINE_SECONDS" ]; then
          log "gave up after $(elapsed)s: action $ACTION_ID still \${ACTION_STATUS:-unknown}"
          exit 1
        fi
        sleep 1 ;;
    esac
  done
  backoff "assignment errored"
done
`;
}
