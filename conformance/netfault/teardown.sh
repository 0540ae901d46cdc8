#!/usr/bin/env bash
# Ends every process left in the network namespaces of fault runs and
# deletes the namespaces (topology.teardown), also after a run that failed
# halfway or was killed. As root:
#
#   conformance/netfault/teardown.sh [PREFIX]     (default: every tnf*)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prefix="${1:-tnf}"
for ns in $(ip netns list | awk '{print $1}'); do
    [[ $ns == "$prefix"* ]] || continue
    # A run's prefix is everything before the first '-'.
    python3 -c "import sys; sys.path.insert(0, sys.argv[1]); import topology; topology.teardown(sys.argv[2])" \
        "$here" "${ns%%-*}"
done
ip netns list | awk -v p="$prefix" 'index($1, p) == 1 {print "left: " $1}'
