#!/usr/bin/env bash
# The container image, built and run: .ci/run calls this after npm test (docs/operations.md,
# "The container check").
#
#   deploy/container/ci-image.sh
#
# 1. installs what it needs from Debian (podman, docker.io, debootstrap, curl) when missing;
# 2. picks the base: FEEDKEEPER_BASE_IMAGE, else the Dockerfile's NODE_IMAGE if it can be pulled,
#    else a local base from deploy/container/build-base.sh (Debian minbase + this machine's node);
# 3. builds the Dockerfile with podman (--format docker keeps HEALTHCHECK; the machine's CA bundle
#    goes in as the build secret npm_ca, so nothing of it stays in the image);
# 4. hands the image to a dockerd it starts itself (podman save | docker load; podman run cannot set
#    rlimits on these VMs) and runs it as the image says: --read-only, --tmpfs /tmp, a named volume
#    on /var/lib/feedkeeper, the image's own non-root USER, --init, --cap-drop ALL, the image's
#    default config pointed at the bundled simulator (run from the same image) on the host network;
# 5. checks: every process runs as uid 1000; /healthz 200 from the host; /readyz 200 (connected
#    to the simulator); the HEALTHCHECK turns the container healthy; `docker stop` (SIGTERM) exits 0
#    within 5 s; `docker diff` is empty, /tmp is empty, recordings and ledger are in the volume
#    and owned by uid 1000; no log line about a read-only file system.
#
# Under CI=true every failure, including an engine that cannot be installed, exits non-zero.
# Elsewhere a machine that cannot get an engine (not root, no apt) is skipped with one line.
# Knobs: FEEDKEEPER_CONTAINER_CHECK=0 skips; FEEDKEEPER_IMAGE_CONTEXT=head builds `git archive HEAD`
# instead of the working tree; FEEDKEEPER_BASE_IMAGE=NAME uses that base; FEEDKEEPER_BASE_PULL=0
# does not try to pull the public base.
set -uo pipefail
export DEBIAN_FRONTEND=noninteractive
cd "$(dirname "$0")/../.."
root=$PWD
ci=${CI:-false}

t0=$(date +%s%N)
ms() { echo $((($(date +%s%N) - $1) / 1000000)); }
secs() { awk -v ms="$1" 'BEGIN { printf "%.1f s", ms / 1000 }'; }
say() { echo "container: $*"; }

work=$(mktemp -d /tmp/feedkeeper-ci-image.XXXXXX)
state=/run/feedkeeper-ci
docker_sock=$state/docker.sock
dockerd_pid=
container=feedkeeper-ci-$$
simulator=feedkeeper-ci-sim-$$
volume=feedkeeper-ci-data-$$
image=localhost/feedkeeper:ci
DOCKER=(docker)
# Podman's own storage under /var/lib/feedkeeper-ci, no systemd, and runc: crun refuses these VMs'
# hybrid cgroup hierarchy ("cgroups in hybrid mode not supported").
PODMAN=(podman --root /var/lib/feedkeeper-ci/podman --runroot "$state/podman" --cgroup-manager cgroupfs --events-backend file --runtime runc)

cleanup() {
  if [[ -n ${docker_ready:-} ]]; then
    "${DOCKER[@]}" rm -f "$container" "$simulator" >/dev/null 2>&1
    "${DOCKER[@]}" volume rm -f "$volume" >/dev/null 2>&1
  fi
  if [[ -n $dockerd_pid ]]; then
    kill -TERM "$dockerd_pid" 2>/dev/null
    for _ in $(seq 1 60); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.25; done
    if kill -0 "$dockerd_pid" 2>/dev/null; then kill -KILL "$dockerd_pid" 2>/dev/null; fi
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
  say "FAIL: $*"
  exit 1
}
skip() {
  if [[ $ci == true ]]; then fail "$* (CI=true: the container check is required)"; fi
  say "SKIP: $*"
  exit 0
}
# Last lines of a log, indented, for a failure message.
show() { [[ -s $1 ]] && tail -n "${2:-25}" "$1" | sed 's/^/container:   | /'; }

if [[ ${FEEDKEEPER_CONTAINER_CHECK:-1} == 0 ]]; then skip "FEEDKEEPER_CONTAINER_CHECK=0"; fi

# ---- 1. tools ----
missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
[[ -x /usr/sbin/dockerd && -x /usr/bin/docker ]] || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -ne 0 ]]; then skip "needs root to install ${missing[*]} and run an engine"; fi
  command -v apt-get >/dev/null 2>&1 || skip "no apt-get to install ${missing[*]}"
  started=$(date +%s%N)
  # Installing docker.io must not start a Docker daemon: a policy-rc.d that answers 101 stops
  # maintainer scripts from starting services. Ours only if none is there.
  policy=/usr/sbin/policy-rc.d
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
    trap 'rm -f "$policy"; cleanup' EXIT
    added_policy=1
  fi
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null; } >"$work/apt.log" 2>&1; then
    show "$work/apt.log" 10
    [[ -n ${added_policy:-} ]] && rm -f "$policy"
    skip "could not install ${missing[*]} with apt-get"
  fi
  if [[ -n ${added_policy:-} ]]; then rm -f "$policy"; trap cleanup EXIT; fi
  say "installed ${missing[*]} in $(secs "$(ms "$started")")"
fi
if [[ $(id -u) -ne 0 ]]; then skip "needs root to run podman build and dockerd"; fi
# Debian's client, not whatever else is first on PATH: it speaks the API of Debian's dockerd.
DOCKER=(/usr/bin/docker --host "unix://$docker_sock")

# ---- 2. the engine: our own dockerd on our own socket, stopped at exit ----
mkdir -p "$state" /var/lib/feedkeeper-ci
# One check at a time per machine: they share the socket, the storage and the image tag (a second
# run would otherwise use the first one's dockerd and lose it when the first one stops it).
exec 9>"$state/lock"
flock -w 1800 9 || fail "another container check holds $state/lock for 30 min"
if "${DOCKER[@]}" version >/dev/null 2>&1; then
  say "using the dockerd already on $docker_sock (not ours: it keeps running)"
else
  started=$(date +%s%N)
  /usr/sbin/dockerd --iptables=false --ip-masq=false --bridge=none \
    --host "unix://$docker_sock" --pidfile "$state/docker.pid" --exec-root "$state/exec" \
    --data-root /var/lib/feedkeeper-ci/docker >"$work/dockerd.log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 1 120); do
    "${DOCKER[@]}" version >/dev/null 2>&1 && break
    kill -0 "$dockerd_pid" 2>/dev/null || break
    sleep 0.25
  done
  if ! "${DOCKER[@]}" version >/dev/null 2>&1; then
    show "$work/dockerd.log"
    fail "dockerd did not come up within 30 s"
  fi
  say "dockerd $("${DOCKER[@]}" version -f '{{.Server.Version}}') up in $(secs "$(ms "$started")") (pid $dockerd_pid)"
fi
docker_ready=1

# ---- 3. the base image ----
default_base=$(sed -nE 's/^ARG NODE_IMAGE=(.+)$/\1/p' Dockerfile | head -n 1)
[[ -n $default_base ]] || fail "Dockerfile has no ARG NODE_IMAGE=... line"
started=$(date +%s%N)
base=${FEEDKEEPER_BASE_IMAGE:-}
if [[ -z $base ]]; then
  if "${PODMAN[@]}" image exists "$default_base" 2>/dev/null; then
    base=$default_base
  elif [[ ${FEEDKEEPER_BASE_PULL:-1} != 0 ]] && timeout 30 "${PODMAN[@]}" pull -q "docker.io/library/$default_base" >"$work/pull.log" 2>&1; then
    base=$default_base
    say "pulled $default_base in $(secs "$(ms "$started")")"
  else
    node_version=$(node --version 2>/dev/null) || fail "no node on PATH for the local base image"
    base=localhost/feedkeeper-base:bookworm-node${node_version#v}-$(sha256sum deploy/container/build-base.sh | cut -c1-12)
    if "${PODMAN[@]}" image exists "$base"; then
      say "public base $default_base cannot be pulled; local base $base (cached)"
    else
      why=$(tail -n 1 "$work/pull.log" 2>/dev/null | sed -E 's/.*(registry[^:]*|Get "[^"]*"): //' | cut -c1-100)
      say "public base $default_base cannot be pulled in $(secs "$(ms "$started")") (${why:-timed out}); building a local base"
      PODMAN="${PODMAN[*]}" deploy/container/build-base.sh "$base" >/dev/null || fail "could not build the local base image"
    fi
  fi
fi
base_ms=$(ms "$started")

# ---- 4. build with podman, load into docker ----
context=$root
if [[ ${FEEDKEEPER_IMAGE_CONTEXT:-} == head ]]; then
  context=$work/context
  mkdir -p "$context"
  git archive HEAD | tar -C "$context" -xf - || fail "git archive HEAD failed"
  say "building from git HEAD $(git rev-parse --short HEAD)"
fi
build_args=(--format docker --network host --build-arg "NODE_IMAGE=$base" -t "$image" -f "$context/Dockerfile")
ca=${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}
if [[ -s $ca ]]; then build_args+=(--secret "id=npm_ca,src=$ca"); fi
started=$(date +%s%N)
if ! "${PODMAN[@]}" build "${build_args[@]}" "$context" >"$work/build.log" 2>&1; then
  show "$work/build.log" 30
  fail "podman build of the Dockerfile on $base failed"
fi
build_ms=$(ms "$started")
started=$(date +%s%N)
if ! "${PODMAN[@]}" save --format docker-archive "$image" 2>"$work/save.log" | "${DOCKER[@]}" load -q >"$work/load.log" 2>&1; then
  show "$work/save.log"; show "$work/load.log"
  fail "podman save | docker load of $image failed"
fi
load_ms=$(ms "$started")
size=$("${DOCKER[@]}" image inspect -f '{{.Size}}' "$image")
say "image $image on $base: built in $(secs "$build_ms"), loaded into docker in $(secs "$load_ms"), $((size / 1000000)) MB"

user=$("${DOCKER[@]}" image inspect -f '{{.Config.User}}' "$image")
[[ -n $user && $user != root && $user != 0 && $user != 0:* && $user != root:* ]] || fail "image USER is '${user:-empty}', not a non-root user"
"${DOCKER[@]}" image inspect -f '{{json .Config.Healthcheck}}' "$image" | grep -q '/healthz' ||
  fail "image has no HEALTHCHECK on /healthz (built in the OCI format?)"
"${DOCKER[@]}" image inspect -f '{{json .Config.Volumes}}' "$image" | grep -q '/var/lib/feedkeeper' ||
  fail "image declares no VOLUME /var/lib/feedkeeper"

# ---- 5. run: the simulator, then the daemon, read-only, on the host network ----
free_port() { node -e "const s=require('node:net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
metrics_port=$(free_port) || fail "no free port for the metrics server"
ro=(--read-only --tmpfs /tmp:size=16m,mode=1777 --network host --cap-drop ALL --security-opt no-new-privileges)

"${DOCKER[@]}" run -d --name "$simulator" "${ro[@]}" "$image" \
  simulate --host 127.0.0.1 --port 0 --events-per-second 20 >/dev/null || fail "could not start the simulator container"
sim_port=
for _ in $(seq 1 80); do
  sim_port=$("${DOCKER[@]}" logs "$simulator" 2>/dev/null | sed -nE 's/.*"port":([0-9]+).*/\1/p' | head -n 1)
  [[ -n $sim_port ]] && break
  sleep 0.25
done
if [[ -z $sim_port ]]; then
  "${DOCKER[@]}" logs "$simulator" >"$work/sim.log" 2>&1; show "$work/sim.log"
  fail "the simulator (feedkeeper simulate in the image) printed no port within 20 s"
fi

# The image's own default config and USER; only the endpoints (the simulator) and the metrics
# address (a free loopback port on the shared host network) come from the environment. The health
# interval is shortened from the image's 30 s so the check is quick; the command is the image's.
run_start=$(date +%s%N)
"${DOCKER[@]}" run -d --name "$container" --init "${ro[@]}" \
  -v "$volume:/var/lib/feedkeeper" \
  -e FEEDKEEPER_METRICS_HOST=127.0.0.1 -e "FEEDKEEPER_METRICS_PORT=$metrics_port" \
  -e "FEEDKEEPER_ENDPOINTS_STREAM=ws://127.0.0.1:$sim_port" -e "FEEDKEEPER_ENDPOINTS_REST=http://127.0.0.1:$sim_port" \
  --health-interval 1s --health-timeout 5s --health-retries 3 \
  "$image" >/dev/null || fail "docker run of $image failed"

logs() { "${DOCKER[@]}" logs "$container" >"$work/daemon.log" 2>&1; show "$work/daemon.log" "${1:-25}"; }
running() { [[ $("${DOCKER[@]}" inspect -f '{{.State.Running}}' "$container" 2>/dev/null) == true ]]; }

# Wait for a URL to answer 200; prints the milliseconds since the daemon started.
await_200() {
  local url=$1 code
  for _ in $(seq 1 240); do
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url" 2>/dev/null)
    if [[ $code == 200 ]]; then ms "$run_start"; return 0; fi
    running || return 2
    sleep 0.25
  done
  echo "$code"
  return 1
}
healthz_ms=$(await_200 "http://127.0.0.1:$metrics_port/healthz") ||
  { logs; fail "/healthz did not answer 200 within 60 s (last: ${healthz_ms:-none}; running: $(running && echo yes || echo no))"; }
readyz_ms=$(await_200 "http://127.0.0.1:$metrics_port/readyz") ||
  { logs; fail "/readyz did not answer 200 within 60 s: the daemon in the container did not connect to the simulator"; }
health=
for _ in $(seq 1 120); do
  health=$("${DOCKER[@]}" inspect -f '{{.State.Health.Status}}' "$container" 2>/dev/null)
  [[ $health == healthy || $health == unhealthy ]] && break
  running || break
  sleep 0.25
done
healthy_ms=$(ms "$run_start")
if [[ $health != healthy ]]; then
  "${DOCKER[@]}" inspect -f '{{json .State.Health}}' "$container" >"$work/health.json" 2>&1; show "$work/health.json" 5
  fail "HEALTHCHECK status is '${health:-none}', not healthy, after 30 s"
fi

uids=$("${DOCKER[@]}" exec "$container" sh -c 'for f in /proc/[0-9]*/status; do awk "/^Uid:/ { print \$2 }" "$f" 2>/dev/null; done' | sort -u | tr '\n' ' ')
[[ $uids == "1000 " ]] || fail "processes in the container run as uid(s) ${uids:-?}, not only 1000 (node)"
tmp_files=$("${DOCKER[@]}" exec "$container" find /tmp -mindepth 1 2>&1 | head -n 5)
# Let it record for a moment so the volume holds the proof.
sleep 2
running || { logs; fail "the daemon exited on its own"; }

# ---- 6. SIGTERM ----
started=$(date +%s%N)
"${DOCKER[@]}" stop -t 10 "$container" >/dev/null || fail "docker stop failed"
stop_ms=$(ms "$started")
exit_code=$("${DOCKER[@]}" inspect -f '{{.State.ExitCode}}' "$container")
"${DOCKER[@]}" logs "$container" >"$work/daemon.log" 2>&1
[[ $exit_code == 0 ]] || { show "$work/daemon.log"; fail "SIGTERM (docker stop): exit code $exit_code, not 0"; }
((stop_ms < 5000)) || { show "$work/daemon.log"; fail "SIGTERM (docker stop): took $(secs "$stop_ms"), not under 5 s"; }

# ---- 7. nothing written outside the volume ----
# --init bind-mounts the engine's tini at /sbin/docker-init (/usr/sbin on a merged-/usr base): the
# engine creates that mount point and its parents show as changed. Everything else counts.
diff=$("${DOCKER[@]}" diff "$container" | grep -vxE 'A (/usr)?/sbin/docker-init|C /usr|C (/usr)?/sbin')
[[ -z $diff ]] || fail "docker diff shows writes outside the volume: $(echo "$diff" | head -n 5 | tr '\n' ' ')"
[[ -z $tmp_files ]] || fail "the daemon wrote to /tmp: $(echo "$tmp_files" | tr '\n' ' ')"
if grep -qiE 'EROFS|read-only file system' "$work/daemon.log"; then
  grep -iE 'EROFS|read-only file system' "$work/daemon.log" | head -n 3 | sed 's/^/container:   | /'
  fail "the daemon tried to write to the read-only root file system"
fi
mountpoint=$("${DOCKER[@]}" volume inspect -f '{{.Mountpoint}}' "$volume")
recorded=$(find "$mountpoint/data/recordings" -type f -name '*.ndjson' -exec cat {} + 2>/dev/null | wc -l)
((recorded > 0)) || fail "no recording in the volume's data/recordings"
foreign=$(find "$mountpoint" ! -uid 1000 | head -n 3)
[[ -z $foreign ]] || fail "files in the volume not owned by uid 1000: $foreign"
files=$(cd "$mountpoint" && find . -type f | sed 's|^\./||' | sort | tr '\n' ' ')

say "ok: read-only root, volume, uid 1000 (USER $user), --init, cap-drop ALL: /healthz 200 after $(secs "$healthz_ms"), /readyz 200 after $(secs "$readyz_ms"), HEALTHCHECK healthy after $(secs "$healthy_ms"); SIGTERM: exit 0 in $(secs "$stop_ms"); docker diff empty, /tmp empty; $recorded recorded lines in the volume ($files)"
say "timings: base $(secs "$base_ms"), build $(secs "$build_ms"), load $(secs "$load_ms"), total $(secs "$(ms "$t0")")"
