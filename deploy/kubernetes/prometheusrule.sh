#!/bin/sh
# prometheusrule.sh: prints a Prometheus Operator PrometheusRule that holds shakend's alerting
# rules, deploy/prometheus/shakend-alerts.yaml (the one copy of them), for
#   deploy/kubernetes/prometheusrule.sh | kubectl apply -n shakend -f -
# An installed package finds the rules in /usr/share/shakend/prometheus; SHAKEND_ALERTS overrides.
set -eu
here=$(dirname "$0")
rules=${SHAKEND_ALERTS:-$here/../prometheus/shakend-alerts.yaml}
[ -r "$rules" ] || rules=/usr/share/shakend/prometheus/shakend-alerts.yaml
if [ ! -r "$rules" ]; then
  echo "prometheusrule.sh: cannot read the alert rules (set SHAKEND_ALERTS)" >&2
  exit 1
fi
cat <<'HEAD'
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: shakend
  labels: {app: shakend}
spec:
HEAD
# The rules file's top level (groups:) becomes spec's; comment lines are left out.
sed -e '/^[[:space:]]*#/d' -e 's/^/  /' "$rules"
