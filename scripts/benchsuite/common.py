"""What the benchmark scripts share: free loopback ports, a ministack of their own, and
reading a process's memory from /proc."""
import os
import socket
import subprocess
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port):
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def start_ministack():
    """A ministack on a free loopback port: (process, port, endpoint URL)."""
    port = free_port()
    proc = subprocess.Popen(["ministack"], env=dict(os.environ, BIND_HOST="127.0.0.1", GATEWAY_PORT=str(port)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    return proc, port, f"http://127.0.0.1:{port}"


def status_mib(pid, field):
    """A `Vm*` field of /proc/<pid>/status in MiB (VmRSS now, VmHWM the peak); None once the
    process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def executable_mib(pid):
    """Resident MiB of the process's own executable file (its code and read-only data, as
    mapped); None once the process is gone."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
        total, ours = 0, False
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                first = line.split(maxsplit=1)[0]
                if "-" in first and not first.endswith(":"):
                    ours = line.rstrip("\n").endswith(" " + exe)
                elif ours and first == "Rss:":
                    total += int(line.split()[1])
        return total / 1024
    except OSError:
        return None


def cpu_seconds(pid):
    """CPU seconds of a running process from /proc/<pid>/stat: (its own, user and system, all
    threads; its reaped children's). None once the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    utime, stime, cutime, cstime = (int(x) / tick for x in fields[11:15])
    return utime + stime, cutime + cstime
