#!/usr/bin/env bash
# Offline check of the Kubernetes manifests, no cluster needed: renders deploy/k8s/base and
# every deploy/k8s/overlays/* with `kubectl kustomize`, validates each rendering against the
# Kubernetes API schemas with kubernetes-validate --strict (unknown fields fail), and checks
# that every container has resource requests and a memory limit and cannot run as root.
# Exits non-zero naming each rendering that failed.
#
# Environment: KUBE_VERSION (default 1.32.0) is the Kubernetes version validated against.
# kubernetes-validate is taken from PATH, else installed (pinned) into a virtualenv under
# ${XDG_CACHE_HOME:-$HOME/.cache}/wick-validate.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
k8s="$here/k8s"
kube_version="${KUBE_VERSION:-1.32.0}"
kv_pin="1.37.0" # ships schemas for Kubernetes 1.25 to 1.37
venv="${XDG_CACHE_HOME:-$HOME/.cache}/wick-validate"

command -v kubectl >/dev/null || { echo "validate.sh: kubectl not found" >&2; exit 2; }

# The policy checks need PyYAML; the virtualenv has it (a kubernetes-validate dependency).
kv="$(command -v kubernetes-validate || true)"
py=python3
if [[ -z "$kv" ]] || ! python3 -c 'import yaml' 2>/dev/null; then
  if [[ ! -x "$venv/bin/kubernetes-validate" ]]; then
    echo "installing kubernetes-validate==$kv_pin into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$kv_pin"
  fi
  kv="$venv/bin/kubernetes-validate"
  py="$venv/bin/python"
fi
echo "kubernetes-validate $("$kv" --version), Kubernetes $kube_version schemas, $(kubectl version --client 2>/dev/null | head -2 | paste -sd' ')"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Every container (init ones too) of every pod template: requests for cpu and memory, a
# memory limit, non-root, no privilege escalation.
policy='
import sys, yaml
bad = []
for doc in yaml.safe_load_all(open(sys.argv[1])):
    if not doc:
        continue
    kind, name = doc["kind"], doc["metadata"]["name"]
    spec = doc.get("spec", {})
    pod = spec.get("jobTemplate", {}).get("spec", spec).get("template", {}).get("spec")
    if kind == "Pod":
        pod = spec
    if not pod:
        continue
    psc = pod.get("securityContext", {})
    for c in pod.get("initContainers", []) + pod.get("containers", []):
        where = kind + "/" + name + " container " + c["name"]
        res = c.get("resources", {})
        for need in ("requests.cpu", "requests.memory", "limits.memory"):
            part, key = need.split(".")
            if key not in res.get(part, {}):
                bad.append(f"{where}: no resources.{need}")
        csc = c.get("securityContext", {})
        sc = {**psc, **csc}
        if sc.get("runAsNonRoot") is not True or sc.get("runAsUser", 1) == 0:
            bad.append(f"{where}: may run as root (set runAsNonRoot: true)")
        if csc.get("allowPrivilegeEscalation") is not False:
            bad.append(f"{where}: allowPrivilegeEscalation is not false")
for b in bad:
    print(b)
sys.exit(1 if bad else 0)
'

failed=()
for dir in "$k8s/base" "$k8s"/overlays/*/; do
  dir="${dir%/}"
  label="${dir#"$here/"}"
  out="$tmp/$(basename "$dir").yaml"
  echo "== $label"
  if ! kubectl kustomize "$dir" >"$out"; then
    echo "FAIL $label: kustomize could not render it"
    failed+=("$label")
    continue
  fi
  # --quiet prints only warnings and errors; a warning (no schema for a kind) is a failure
  # too, since that resource then went unchecked.
  rc=0
  report="$("$kv" --strict --quiet -k "$kube_version" "$out" 2>&1)" || rc=$?
  if [[ $rc -ne 0 || -n "$report" ]]; then
    printf '%s\n' "$report"
    echo "FAIL $label: schema validation"
    failed+=("$label")
    continue
  fi
  if ! "$py" -c "$policy" "$out"; then
    echo "FAIL $label: policy checks"
    failed+=("$label")
    continue
  fi
  echo "ok   $label: $(grep -c '^kind:' "$out") resources"
done

if ((${#failed[@]})); then
  echo "validate.sh: failed: ${failed[*]}" >&2
  exit 1
fi
echo "validate.sh: all renderings valid"
