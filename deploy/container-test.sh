#!/usr/bin/env bash
# Runs wick as real containers with podman, with the dev overlay's own settings, and checks it
# works: image build from deploy/docker/Dockerfile (target `prebuilt`, binaries built on the
# host), the rendered `kubectl kustomize deploy/k8s/overlays/dev` started container by
# container (args, env, user, groups, read-only root, volumes, memory limits read from the
# rendering), a sweep from the host, a worker killed mid-trial, a coordinator restart, the
# gRPC probes, users and writable paths. No registry needed. See deploy/README.md,
# "Running the containers locally (podman)".
#
# Environment: WICK_CT_DIR (default ${XDG_CACHE_HOME:-~/.cache}/wick-container-test) holds the
# build context, volumes and logs; WICK_CT_PROFILE=release (default) or dev picks the cargo
# profile of the binaries; WICK_CT_NO_BUILD=1 skips the cargo build and uses those in
# target/release (target/debug for dev) as they are; WICK_CT_PODMAN_ROOT, when set, is podman's storage
# (--root; e.g. a tmpfs on a machine short of disk); WICK_CT_KEEP=1 leaves the containers
# running at the end.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
export PATH="$HOME/.cargo/bin:$PATH"
work="${WICK_CT_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/wick-container-test}"
base_image=localhost/debian:bookworm-slim
image=localhost/wick:dev
net=wick-ct
subnet=10.89.77
coord_port=50051
s3_port=19000
sudo=""
[[ "$(id -u)" -eq 0 ]] || sudo=sudo

t0=$SECONDS
phases=()
checks=()
failed=0
phase_start=$SECONDS
phase() { phases+=("$(printf '%-34s %4ds' "$1" $((SECONDS - phase_start)))"); phase_start=$SECONDS; }
check() { # check NAME COMMAND...: record pass/fail, never stop the run
  local name="$1"; shift
  if "$@" >>"$work/checks.log" 2>&1; then checks+=("ok   $name"); else checks+=("FAIL $name"); failed=1; fi
}
log() { echo "== $*"; }

mkdir -p "$work"
: >"$work/checks.log"
# podman import/build stage layers in TMPDIR (default /var/tmp): keep them with the rest.
export TMPDIR="$work/tmp"
mkdir -p "$TMPDIR"

# ---- podman, its config, the base image ---------------------------------------------------
if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null; then
  log "installing podman"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq podman buildah debootstrap runc
fi
if [[ ! -f /etc/containers/containers.conf ]]; then
  # crun fails on this machine's cgroup setup, and podman's default ulimits exceed the hard ones.
  n="$(ulimit -Hn)"
  $sudo mkdir -p /etc/containers
  printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=32768:32768"]\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' "$n" "$n" |
    $sudo tee /etc/containers/containers.conf >/dev/null
fi
pm() { $sudo podman ${WICK_CT_PODMAN_ROOT:+--root "$WICK_CT_PODMAN_ROOT" --runroot "$WICK_CT_PODMAN_ROOT.run"} "$@"; }
if ! pm image exists "$base_image"; then
  # The Debian mirror apt uses (a deb822 "URIs:" or a one-line "deb" entry ending in /debian).
  mirror="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk '($1 == "URIs:" || $1 == "deb") { for (i = 2; i <= NF; i++) if ($i ~ /^https?:.*\/debian\/?$/) { print $i; exit } }' || true)"
  mirror="${mirror:-http://deb.debian.org/debian}"
  log "base image $base_image from $mirror (debootstrap, about a minute)"
  rootfs="$(mktemp -d "$work/rootfs.XXXXXX")"
  $sudo debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log"
  $sudo tar -C "$rootfs" -c . | pm import - "$base_image" >/dev/null
  $sudo rm -rf "$rootfs"
fi
phase "podman + base image"

# ---- binaries and image ------------------------------------------------------------------------
# WICK_CT_PROFILE=dev takes the binaries the tests were built with (.ci/run: after
# `cargo test` the build is a no-op; the workspace's dev profile is optimized), instead of
# a release build of its own.
profile="${WICK_CT_PROFILE:-release}"
case "$profile" in
  release) bindir=target/release ;;
  dev) bindir=target/debug ;;
  *) echo "WICK_CT_PROFILE must be release or dev, not '$profile'" >&2; exit 2 ;;
esac
if [[ "${WICK_CT_NO_BUILD:-}" == 1 ]]; then
  log "using the binaries already in $bindir (WICK_CT_NO_BUILD=1)"
else
  log "cargo build --profile $profile"
  cargo build --profile "$profile" -p wick-coordinator -p wick-worker -p wick-client 2>&1 | tail -1
fi
phase "cargo build (host)"
log "image $image"
ctx="$work/context"
rm -rf "$ctx" && mkdir -p "$ctx/bin"
for b in coordinator worker client; do objcopy --strip-debug "$bindir/$b" "$ctx/bin/$b"; done
pm build -q --pull=never --target prebuilt --build-arg "DEBIAN_IMAGE=$base_image" \
  -f deploy/docker/Dockerfile -t "$image" "$ctx" >/dev/null
image_size="$(pm image inspect "$image" --format '{{.Size}}' | awk '{printf "%.0f MB", $1/1e6}')"
base_size="$(pm image inspect "$base_image" --format '{{.Size}}' | awk '{printf "%.0f MB", $1/1e6}')"
phase "image build (prebuilt)"

# ---- the rendered dev overlay -> podman run ------------------------------------------------------
rendered="$work/dev.yaml"
kubectl kustomize deploy/k8s/overlays/dev >"$rendered"
# podargs DEPLOYMENT POD IP VOLDIR: the `podman run` arguments (NUL-separated) of the
# Deployment's single container, from the rendering. Secrets and ConfigMaps are resolved
# from the same rendering; secret volumes are written under VOLDIR with their mode and the
# pod's fsGroup as group; emptyDirs are VOLDIR folders with emptyDir's 0777.
cat >"$work/podargs.py" <<'PY'
import math, os, re, sys, yaml
rendered, deploy, pod, ip, voldir, image = sys.argv[1:7]
docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
def data(kind, name):
    d = by[(kind, name)]
    if kind == "Secret":
        import base64
        out = {k: base64.b64decode(v).decode() for k, v in d.get("data", {}).items()}
        out.update(d.get("stringData", {}))
        return out
    return dict(d.get("data", {}))
# ConfigMaps get a hash suffix: find by prefix as the rendering names them.
def cm(name):
    return data("ConfigMap", name)
spec = by[("Deployment", deploy)]["spec"]["template"]["spec"]
(c,) = spec["containers"]
psc, csc = spec.get("securityContext", {}), c.get("securityContext", {})
args = ["--name", pod, "--hostname", pod, "--ip", ip, "--network-alias", deploy]
env = {}
for src in c.get("envFrom", []):
    if "configMapRef" in src: env.update(cm(src["configMapRef"]["name"]))
    if "secretRef" in src: env.update(data("Secret", src["secretRef"]["name"]))
def cpu(q):
    q = str(q)
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)
for e in c.get("env", []):
    if "value" in e:
        env[e["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), e["value"])
        continue
    vf = e["valueFrom"]
    if "secretKeyRef" in vf:
        env[e["name"]] = data("Secret", vf["secretKeyRef"]["name"])[vf["secretKeyRef"]["key"]]
    elif "configMapKeyRef" in vf:
        env[e["name"]] = cm(vf["configMapKeyRef"]["name"])[vf["configMapKeyRef"]["key"]]
    elif "fieldRef" in vf:
        env[e["name"]] = {"status.podIP": ip, "metadata.name": pod,
                          "metadata.namespace": "wick"}[vf["fieldRef"]["fieldPath"]]
    elif "resourceFieldRef" in vf:
        r = vf["resourceFieldRef"]; part, key = r["resource"].split(".")
        val = c["resources"][part][key]
        env[e["name"]] = str(math.ceil(cpu(val) / cpu(r.get("divisor", "1"))))
for k, v in env.items():
    args += ["--env", f"{k}={v}"]
user = csc.get("runAsUser", psc.get("runAsUser"))
group = csc.get("runAsGroup", psc.get("runAsGroup"))
if user is not None:
    args += ["--user", f"{user}:{group}" if group is not None else str(user)]
fs_group = psc.get("fsGroup")
if fs_group is not None:
    args += ["--group-add", str(fs_group)]
if csc.get("readOnlyRootFilesystem"):
    # Kubernetes mounts nothing writable that the pod does not declare: no tmpfs on /tmp etc.
    args += ["--read-only", "--read-only-tmpfs=false"]
if csc.get("allowPrivilegeEscalation") is False:
    args += ["--security-opt", "no-new-privileges"]
for cap in csc.get("capabilities", {}).get("drop", []):
    args += ["--cap-drop", cap.lower()]
lim = c.get("resources", {}).get("limits", {}).get("memory")
if lim:
    args += ["--memory", lim.replace("Gi", "g").replace("Mi", "m")]
vols = {v["name"]: v for v in spec.get("volumes", [])}
for m in c.get("volumeMounts", []):
    v = vols[m["name"]]
    host = os.path.join(voldir, pod, m["name"])
    os.makedirs(host, exist_ok=True)
    if "emptyDir" in v:
        os.chmod(host, 0o777)
    elif "secret" in v:
        s = v["secret"]; d = data("Secret", s["secretName"])
        items = s.get("items") or [{"key": k, "path": k} for k in d]
        for it in items:
            p = os.path.join(host, it["path"])
            open(p, "w").write(d[it["key"]])
            os.chmod(p, it.get("mode", s.get("defaultMode", 0o644)))
            if fs_group is not None:
                os.chown(p, 0, fs_group)
    else:
        sys.exit(f"volume {m['name']}: kind not handled")
    ro = ",ro" if m.get("readOnly") else ""
    args += ["--mount", f"type=bind,src={host},dst={m['mountPath']}{ro}"]
if c.get("command"):
    import json
    args += ["--entrypoint", json.dumps(c["command"])]
args += [image] + c.get("args", [])
sys.stdout.write("\0".join(map(str, args)) + "\0")
PY
# probes DEPLOYMENT: "KIND PORT SERVICE" per probe (readiness, liveness) from the rendering.
probes() {
  python3 - "$rendered" "$1" <<'PY'
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "Deployment" and d["metadata"]["name"] == sys.argv[2]:
        c = d["spec"]["template"]["spec"]["containers"][0]
        for k in ("readinessProbe", "livenessProbe"):
            g = c[k]["grpc"]
            print(k, g["port"], g.get("service", ""))
PY
}
secret_val() { # secret_val NAME KEY, from the rendering
  python3 -c 'import sys,yaml,base64
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"]=="Secret" and d["metadata"]["name"]==sys.argv[2]: print(base64.b64decode(d["data"][sys.argv[3]]).decode())' \
    "$rendered" "$1" "$2"
}
store_url="$(python3 -c 'import sys,yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"]=="ConfigMap" and d["metadata"]["name"].startswith("wick-config"): print(d["data"]["WICK_STORE"])' "$rendered")"
bucket="$(sed -E 's#s3://([^/]+).*#\1#' <<<"$store_url")"

vols="$work/vol"
cleanup() {
  for c in coordinator worker-1 worker-2 minio; do pm rm -f -t 0 "$c" >/dev/null 2>&1 || true; done
}
cleanup
$sudo rm -rf "$vols" && mkdir -p "$vols"
pm network exists "$net" || pm network create --subnet "$subnet.0/24" "$net" >/dev/null

start() { # start DEPLOYMENT POD IP [extra podman args]
  local deploy="$1" pod="$2" ip="$3"; shift 3
  local -a a=()
  mapfile -d '' a < <(python3 "$work/podargs.py" "$rendered" "$deploy" "$pod" "$ip" "$vols" "$image")
  pm run -d --pull=never --network "$net" "$@" "${a[@]}" >/dev/null
}

# The store: the minio overlay's MinIO replaced by s3s-fs (no registry for minio/minio), a
# container named minio on the same network, with the wick-s3 Secret's keys; the folder
# "$bucket" is the bucket that overlays/minio's Job would create.
log "store (s3s-fs as minio:9000)"
s3key="$(secret_val wick-s3 AWS_ACCESS_KEY_ID)"
s3secret="$(secret_val wick-s3 AWS_SECRET_ACCESS_KEY)"
token="$(secret_val wick-auth token)"
mkdir -p "$vols/s3/$bucket"
pm run -d --pull=never --name minio --network "$net" --ip "$subnet.10" --network-alias minio \
  -p "127.0.0.1:$s3_port:9000" -v "$(command -v s3s-fs):/usr/local/bin/s3s-fs:ro" -v "$vols/s3:/data" \
  "$base_image" s3s-fs --host 0.0.0.0 --port 9000 --access-key "$s3key" --secret-key "$s3secret" /data >/dev/null

log "coordinator and 2 workers (dev overlay has replicas: 1; scaled to 2 as with kubectl scale)"
start coordinator coordinator "$subnet.11" -p "127.0.0.1:$coord_port:50051"
start worker worker-1 "$subnet.21"
start worker worker-2 "$subnet.22"

# gRPC health probes as the kubelet runs them (from the node, to the pod IP): a small
# grpcio client in a virtualenv, since the image has no probe binary (Kubernetes' grpc
# probes need none).
venv="$work/venv"
if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import grpc_health' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check grpcio==1.66.2 grpcio-health-checking==1.66.2
fi
probe() { # probe IP PORT SERVICE
  "$venv/bin/python" - "$@" <<'PY'
import sys, grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
ip, port, svc = sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else ""
st = health_pb2_grpc.HealthStub(grpc.insecure_channel(f"{ip}:{port}"))
r = st.Check(health_pb2.HealthCheckRequest(service=svc), timeout=1)
print(ip, port, repr(svc), health_pb2.HealthCheckResponse.ServingStatus.Name(r.status))
sys.exit(0 if r.status == health_pb2.HealthCheckResponse.SERVING else 1)
PY
}
wait_probes() { # wait_probes DEPLOYMENT IP: until every probe of it passes (60 s)
  local deploy="$1" ip="$2" kind port svc ok
  for _ in $(seq 120); do
    ok=1
    while read -r kind port svc; do probe "$ip" "$port" "$svc" >/dev/null 2>&1 || ok=0; done < <(probes "$deploy")
    ((ok)) && return 0
    sleep 0.5
  done
  return 1
}
check "coordinator probes (readiness, liveness)" wait_probes coordinator "$subnet.11"
check "worker-1 probes (readiness, liveness)" wait_probes worker "$subnet.21"
check "worker-2 probes (readiness, liveness)" wait_probes worker "$subnet.22"
phase "containers up + probes"

# ---- users, read-only root, writable paths ---------------------------------------------------
uid_is() { [[ "$(pm exec "$1" awk '/^Uid:/{print $2}' /proc/1/status)" == 10001 ]]; }
cant_write() { ! pm exec "$1" sh -c "echo x > $2"; }
can_write() { pm exec "$1" sh -c "echo x > $2/.write-test && rm $2/.write-test"; }
token_readable() { pm exec "$1" test -r /var/run/secrets/wick/token; }
for c in coordinator worker-1; do
  check "$c: process runs as uid 10001" uid_is "$c"
  check "$c: / is read-only (/usr/local/bin)" cant_write "$c" /usr/local/bin/x
  check "$c: / is read-only (home /var/lib/wick)" cant_write "$c" /var/lib/wick/x
  check "$c: /tmp writable" can_write "$c" /tmp
  check "$c: token readable (fsGroup, 0440)" token_readable "$c"
done
check "worker-1: /var/cache/wick writable" can_write worker-1 /var/cache/wick
phase "security checks"

# ---- a sweep from the host ------------------------------------------------------------------
# The client gets the coordinator's address and the token, nothing of the store: the data
# goes through the coordinator (UploadData), as it would through a port-forward.
export WICK_TOKEN="$token" WICK_COORDINATOR="http://127.0.0.1:$coord_port"
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_ENDPOINT AWS_ENDPOINT_URL WICK_STORE
client="$bindir/client"
data="${WICK_DATA:-$repo/../shared/data}"
log "sweep"
sweep_json="$($client --json sweep --detach --data "$data" --l 12,40 --kl 1,100 --epochs 2)"
sweep_id="$(python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print(d["sweep"])' <<<"$sweep_json")"
echo "sweep $sweep_id"
through_coordinator() { # both files sent through the coordinator, whole in the bucket
  python3 -c 'import json,sys,os
d=json.loads(sys.argv[1]); root=sys.argv[2]
parts=d["data"]; print(parts)
ok=len(parts)==2 and all(p["via"]=="coordinator" and os.path.getsize(os.path.join(root,p["key"]))==p["bytes"] for p in parts)
left=[f for _,_,fs in os.walk(os.path.join(root,"uploads")) for f in fs]
sys.exit(0 if ok and not left else 1)' \
    "$sweep_json" "$vols/s3/${store_url#s3://}"
}
check "data sent through the coordinator (client has no store credentials)" through_coordinator
phase "upload + submit"

# Kill the worker of the first running VAE trial; its lease expires and the other worker
# resumes the trial. A VAE trial, because a 2-epoch covid trial can end between the status
# call and the kill, and then nothing is left to resume.
status_json() { $client --json status "$sweep_id"; }
victim=""
for _ in $(seq 240); do
  victim="$(status_json 2>/dev/null | python3 -c 'import json,sys
d=json.load(sys.stdin)
for t in d["trials"]:
    if t["state"]=="running" and t["worker"] and t["task"]=="vae":
        print(t["worker"], t["id"]); break' || true)"
  [[ -n "$victim" ]] && break
  sleep 0.5
done
read -r victim_worker victim_trial <<<"$victim"
echo "killing $victim_worker (trial $victim_trial)"
check "a trial ran on a worker before the kill" test -n "$victim_worker"
[[ -n "$victim_worker" ]] && pm kill "$victim_worker" >/dev/null
phase "wait for a running trial + kill"

log "restart coordinator"
sleep 2
pm stop -t 10 coordinator >/dev/null
sleep 1
pm start coordinator >/dev/null
check "coordinator probes after restart" wait_probes coordinator "$subnet.11"
phase "coordinator restart"

log "watch until done"
check "sweep finishes after worker kill and coordinator restart" timeout 600 $client watch "$sweep_id"
$client status "$sweep_id" | tee "$work/status.txt"
all_done() {
  status_json | python3 -c 'import json,sys
ts=json.load(sys.stdin)["trials"]
for t in ts: print(t["id"], t["state"], t["worker"], "attempts", t["attempts"])
sys.exit(0 if ts and all(t["state"] in ("succeeded", "stopped_early") for t in ts) else 1)'
}
resumed_elsewhere() { # the killed worker's trial finished on another worker, in a later attempt
  status_json | python3 -c 'import json,sys
t=[t for t in json.load(sys.stdin)["trials"] if t["id"]==sys.argv[1]][0]
print(t)
sys.exit(0 if t["worker"]!=sys.argv[2] and t["attempts"]>1 else 1)' "$victim_trial" "$victim_worker"
}
check "killed trial resumed on the other worker" resumed_elsewhere
check "every trial succeeded" all_done
phase "sweep to the end"

log "predict, sample"
check "predict --country TW" $client predict --country TW
check "sample --n 16" sh -c "cd '$work' && '$repo/$client' sample --n 16"
phase "predict + sample"

if [[ "${WICK_CT_KEEP:-}" != 1 ]]; then cleanup; fi
total=$((SECONDS - t0))
echo
echo "== container-test summary"
echo "image $image: $image_size (base $base_image: $base_size)"
printf '%s\n' "${phases[@]}"
printf '%-34s %4ds\n' "total" "$total"
printf '%s\n' "${checks[@]}"
if ((failed)); then echo "container-test: FAILED (details: $work/checks.log)"; exit 1; fi
echo "container-test: all checks passed"
