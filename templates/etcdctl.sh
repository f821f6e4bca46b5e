# {{ profile_file }}: etcdctl talks to cluster {{ cluster }} with no flags.
# Written by {{ generator }}. The key is readable by root and {{ user }} only.
export ETCDCTL_API=3
export ETCDCTL_ENDPOINTS={{ endpoints }}
export ETCDCTL_CACERT={{ ca_file }}
export ETCDCTL_CERT={{ cert_file }}
export ETCDCTL_KEY={{ key_file }}
case ":$PATH:" in
  *":{{ bin_dir }}:"*) ;;
  *) PATH="$PATH:{{ bin_dir }}" ;;
esac
