#!/usr/bin/env bash
# Writes the benchmarks' cluster.yaml to stdout: nodes etcd-1 … etcd-N on
# 127.0.0.11 …, RSA-2048, no client certificates (the work of the by-hand
# pipelines, which make none), and the given package formats.
#
#   cluster-yaml.sh N FORMATS     e.g. cluster-yaml.sh 7 "tar, deb, rpm"
set -euo pipefail

n=$1
formats=$2
printf 'version: 1\ncluster: { name: bench, token: etcd_cluster }\n'
printf 'etcd: { version: 3.4.16, arch: amd64 }\nnodes:\n'
for i in $(seq 1 "$n"); do
  printf '  - { name: etcd-%d, ip: 127.0.0.%d }\n' "$i" $((10 + i))
done
printf 'clients: []\npki: { algorithm: rsa-2048 }\npackages: { formats: [%s] }\n' "$formats"
