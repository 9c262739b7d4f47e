"""Every process start (web workers, `gasdesk worker`, test servers) pays for what the app imports: the
browser softphone's WebRTC stack (aiortc, PyAV: ~0.4 s) loads only where the softphone runs."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.no_database


def test_building_the_app_does_not_load_the_webrtc_stack() -> None:
    probe = ("import sys; from gasdesk.web.app import create_app; create_app(); "
             "print(sorted(m for m in ('aiortc', 'av') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
