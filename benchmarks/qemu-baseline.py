#!/usr/bin/env python3
"""QEMU 7.2 -> QEMU 7.2 postcopy on this machine: the baseline our end-to-end benchmark is compared with.

The guest has no disk: a random blob of --size MiB is loaded into guest RAM at 16 MiB by the loader device
and the firmware idles (TCG; KVM cannot run guests here). RAM is the blob + 76 MiB + 8 KiB (never a power of
two: QEMU 7.2 under TCG can lose writes during migration at power-of-two sizes).

  benchmarks/qemu-baseline.py --size 1024 --mode postcopy --runs 3 [--json FILE]

Mode postcopy: `migrate` then at once `migrate-start-postcopy` (pure postcopy). Mode precopy-first: precopy at
full speed for --precopy-seconds, then the switch. Prints one JSON object per run and the median.
"""
import argparse, json, os, socket, statistics, subprocess, sys, tempfile, time


class Qmp:
    def __init__(self, path):
        for _ in range(200):
            if os.path.exists(path):
                break
            time.sleep(0.05)
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.f = self.s.makefile("rw")
        self.events = []      # asynchronous events read while waiting for a command's return
        json.loads(self.f.readline())
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args} if args else {"execute": name}) + "\n")
        self.f.flush()
        while True:
            m = json.loads(self.f.readline())
            if "event" in m:
                self.events.append(m)
            if "return" in m:
                return m["return"]
            if "error" in m:
                raise RuntimeError(f"{name}: {m['error']}")


def run(size_mib, mode, precopy_seconds, port, work):
    blob = os.path.join(work, "blob.bin")
    if not os.path.exists(blob) or os.path.getsize(blob) != size_mib << 20:
        with open(blob, "wb") as f:
            for _ in range(size_mib):
                f.write(os.urandom(1 << 20))
    mem = f"{size_mib + 76}M"
    common = ["qemu-system-x86_64", "-accel", "tcg", "-machine", "pc", "-m", mem, "-nodefaults", "-display", "none",
              "-serial", "none", "-monitor", "none", "-device", f"loader,file={blob},addr=0x1000000,force-raw=on"]
    src_sock, dst_sock = os.path.join(work, "src.qmp"), os.path.join(work, "dst.qmp")
    for p in (src_sock, dst_sock):
        if os.path.exists(p):
            os.unlink(p)
    src = subprocess.Popen(common + ["-qmp", f"unix:{src_sock},server=on,wait=off"])
    dst = subprocess.Popen(common + ["-qmp", f"unix:{dst_sock},server=on,wait=off", "-incoming", f"tcp:127.0.0.1:{port}"])
    try:
        s, d = Qmp(src_sock), Qmp(dst_sock)
        time.sleep(1.0)  # firmware loads the blob and idles
        caps = [{"capability": "postcopy-ram", "state": True}, {"capability": "return-path", "state": True}]
        d.cmd("migrate-set-capabilities", capabilities=caps)
        s.cmd("migrate-set-capabilities", capabilities=caps)
        s.cmd("migrate-set-parameters", **{"max-bandwidth": 100 << 30, "max-postcopy-bandwidth": 0, "downtime-limit": 300})
        t0 = time.monotonic()
        s.cmd("migrate", uri=f"tcp:127.0.0.1:{port}")
        if mode == "postcopy":
            s.cmd("migrate-start-postcopy")
        else:
            time.sleep(precopy_seconds)
            s.cmd("migrate-start-postcopy")
        t_switch = time.monotonic()
        while True:
            q = s.cmd("query-migrate")
            if q.get("status") in ("completed", "failed", "cancelled"):
                break
            time.sleep(0.01)
        t1 = time.monotonic()
        d.cmd("query-status")     # reads the destination's events so far (RESUME at POSTCOPY_RUN)
        ram = q.get("ram", {})
        # the guest's own downtime: STOP on the source to RESUME on the destination; QMP stamps both with the
        # host's wall clock (one host, one clock), in microseconds
        stamp = lambda e: e["timestamp"]["seconds"] + e["timestamp"]["microseconds"] / 1e6
        stops = [stamp(e) for e in s.events if e["event"] == "STOP"]
        resumes = [stamp(e) for e in d.events if e["event"] == "RESUME"]
        to_resume = round((resumes[0] - stops[-1]) * 1000, 3) if stops and resumes else None
        return {
            "peer": "qemu-7.2", "mode": mode, "size_mib": size_mib, "status": q.get("status"),
            "total_ms": q.get("total-time", round((t1 - t0) * 1000)), "wall_ms": round((t1 - t0) * 1000),
            "postcopy_wall_ms": round((t1 - t_switch) * 1000),
            "bytes_sent": ram.get("transferred"), "postcopy_requests": ram.get("postcopy-requests"),
            "throughput_gbps": round((ram.get("transferred") or 0) / max(t1 - t_switch, 1e-9) / 1e9, 3),
            "mbps_reported": ram.get("mbps"), "downtime_ms": q.get("downtime"),
            "downtime_to_guest_resumed_ms": to_resume,
        }
    finally:
        for p in (src, dst):
            p.kill()
            p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1024, help="blob size in MiB")
    ap.add_argument("--mode", choices=["postcopy", "precopy-first"], default="postcopy")
    ap.add_argument("--precopy-seconds", type=float, default=2.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--port", type=int, default=47411)
    ap.add_argument("--json")
    a = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="qemu-baseline-") as work:
        for i in range(a.runs):
            r = run(a.size, a.mode, a.precopy_seconds, a.port + i, work)
            print(json.dumps(r), flush=True)
            results.append(r)
    ok = [r for r in results if r["status"] == "completed"]
    summary = {"peer": "qemu-7.2", "mode": a.mode, "size_mib": a.size, "runs": len(results), "completed": len(ok)}
    if ok:
        summary["median_total_ms"] = statistics.median(r["total_ms"] for r in ok)
        summary["median_throughput_gbps"] = statistics.median(r["throughput_gbps"] for r in ok)
    print(json.dumps(summary))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"runs": results, "summary": summary}, f, indent=1)
    return 0 if len(ok) == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
