#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, only those missing.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# The load balancer in front of the web processes (make run-cluster, tests/cluster); run by gasdesk itself
# with a generated configuration, so the package's own service is never needed.
[ -x /usr/sbin/nginx ] || need+=(nginx)
# grep without -q: under pipefail, -q exits at the first match and fc-list dies of SIGPIPE, failing the test
fc-list 2>/dev/null | grep -i "noto sans cjk" >/dev/null || need+=(fonts-noto-cjk)
# Report exports: the PDF tests read the text back and render page 1 (pdftotext, pdftoppm, pdffonts, pdfimages).
command -v pdftotext >/dev/null 2>&1 && command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
# Hotline prompts: espeak-ng (Mandarin TTS), sox (8 kHz conversion) with MP3 support for uploaded recordings.
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
command -v sox >/dev/null 2>&1 || need+=(sox)
sox -h 2>/dev/null | grep -q "AUDIO FILE FORMATS:.* mp3 " || need+=(libsox-fmt-mp3)
# The embedded SIP endpoint's end-to-end tests call it with a real SIP client (baresip-core has the modules).
[ -f /usr/lib/baresip/modules/ctrl_tcp.so ] && command -v baresip >/dev/null 2>&1 || need+=(baresip-core)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${need[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
