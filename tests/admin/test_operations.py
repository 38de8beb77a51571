"""`vigint serve` stopping as a person or a service manager stops it."""

import signal
import subprocess
import sys


def test_a_stop_as_soon_as_it_serves_drains_and_exits_0(tmp_path):
    # systemctl stop just after start: the signal handlers are in place before the banner says it serves.
    server = subprocess.Popen([sys.executable, "-m", "vigint", "serve", "--port", "0", "--web-port", "0",
                               "--db", str(tmp_path / "vigint.db")], cwd=tmp_path, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for line in server.stdout:  # the banner's last line
            if "open-file limit" in line:
                break
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=30)
    finally:
        server.kill()
    assert server.returncode == 0 and "Draining" in out and "Stopped." in out, err
    assert "Traceback" not in err
