# The etcdctl profile ({{ profile_file }}): etcdctl talks to cluster
# {{ cluster }} with no flags.
# Written by {{ generator }}. The key is readable by root and {{ user }} only.
# etcdctl 3.4 refuses a flag that repeats one of these variables ("conflicting
# environment variable ... shadowed by corresponding command-line flag"): to
# aim elsewhere, set the variable instead, e.g.
#   ETCDCTL_ENDPOINTS=https://10.0.0.1:2379 etcdctl endpoint status
export ETCDCTL_API=3
export ETCDCTL_ENDPOINTS="{{ endpoints }}"
export ETCDCTL_CACERT="{{ ca_file }}"
export ETCDCTL_CERT="{{ cert_file }}"
export ETCDCTL_KEY="{{ key_file }}"
case ":$PATH:" in
  *":{{ bin_dir }}:"*) ;;
  *) PATH="$PATH:{{ bin_dir }}" ;;
esac
