#!/usr/bin/env bash
# The whole test run, from a machine that has only Python 3.11+ (and apt, as root):
# system packages, a venv with nvr and its test extras, then ruff, mypy and pytest.
# Extra arguments go to pytest (e.g. tools/test.sh -k syncer). The tests run in
# $NVR_TEST_WORKERS pytest-xdist workers (default 3: most of the suite waits on cameras,
# daemons and browsers, not on the CPU; 3 workers take the run from ~7.5 to ~3 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  # GStreamer RTSP server for the test camera (run with the system /usr/bin/python3)
  python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav
  # the browser Playwright drives (UI and playback tests), and ffprobe for served media
  chromium ffmpeg
  # certificates for the HTTPS test
  openssl
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing system packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  "$PY" -m venv .venv
fi
echo "== installing nvr[test] into .venv"
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'

echo "== ruff"
.venv/bin/ruff check nvr tests fixtures tools
echo "== mypy"
.venv/bin/mypy nvr
echo "== pytest"
exec .venv/bin/pytest -n "${NVR_TEST_WORKERS:-3}" "$@"
