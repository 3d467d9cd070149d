"""Session 14's call: several encoder arms side by side on one GPU until a deadline (one run kept it 0–35 %
busy), float16 snapshots to $OUT as they come; then reenact's model stages on CUDA and the kit's bench on the
device. Usage: arms.py SECONDS_OF_TRAINING (the arms: ARMS below, or a subset named by $ARMS;
$EXTRAS=0: no smoke and bench after them)"""

import json, os, subprocess, sys, tarfile, time, torch
from pathlib import Path
from recipes import ENC_RECIPE, half, sample_gpu, save_atomic

T0, SPAN = time.time(), float(sys.argv[1])
OUT, RUN = Path(os.environ.get("OUT", "/tmp/out")), Path(".gpu/run")
OUT.mkdir(parents=True, exist_ok=True)
RUN.mkdir(parents=True, exist_ok=True)
py, env = sys.executable, os.environ.get
# v5's motion file: git show e7f17a9:data/faces128_motion.pt
MOTION_V4 = env("MOTION_V4", ".gpu/b/motion_v4.pt")
CLIPS = env("ENC_CLIPS", ".gpu/b/clips128.zip")
BASE = ["--faces", env("ENC_FACES", ".gpu/b/faces_sub.zip"), "--clips", CLIPS, "--gan", "faces128",
        "--init", ".gpu/encoder_init.pt", "--steps", "1000000", "--workers", "3", "--sample-every", "500",
        "--ckpt-every", env("ENC_CKPT", "100"), "--motion-directions", MOTION_V4, *ENC_RECIPE]
ARMS = {  # v6's recipe continued; more real pairs with a heavier L2 (PSNR); the same at a third of the lr
    "A": ["--batch", "32", "--synthetic", "32", "--lr", "1e-4"],
    "B": ["--batch", "48", "--synthetic", "16", "--lr", "1e-4", "--l2-weight", "4.0"],
    "C": ["--batch", "48", "--synthetic", "16", "--lr", "3e-5", "--l2-weight", "4.0"],
}
ARMS = {k: v for k, v in ARMS.items() if k in env("ARMS", "ABC")}


def say(*a):
    print(f"[{time.time() - T0:6.1f}s]", *a, flush=True)


subprocess.run([py, ".gpu/bin/prep.py"], check=True)
procs, cmds = {}, {}
for name, extra in ARMS.items():
    cmds[name] = [*BASE, "--out", str(RUN / name), *extra]
    procs[name] = subprocess.Popen([py, ".gpu/bin/enc_main.py", *cmds[name]],
                                   stdout=open(RUN / f"{name}.log", "w"), stderr=subprocess.STDOUT)
(RUN / "commands.json").write_text(json.dumps(cmds, indent=1))
say("started", list(procs))


def snapshot(name, tag):
    ck = torch.load(RUN / name / "checkpoint.pt", map_location="cpu", weights_only=False)
    keep = {k: ck[k] for k in ("config", "E_kwargs", "G_fingerprint", "step", "images_seen", "wall_s")}
    save_atomic(keep | {"E": half(ck["E"])}, OUT / f"enc_{name}_{tag}.pt")
    say("wrote", name, tag, ck["step"])


mid, smi = {n: False for n in procs}, open(RUN / "smi.csv", "w")
while time.time() - T0 < SPAN:
    time.sleep(5)
    el = time.time() - T0
    for n in procs:
        if not mid[n] and el >= SPAN / 2 and (RUN / n / "checkpoint.pt").is_file():
            try: snapshot(n, "mid")
            except Exception as e: say("snapshot failed", n, repr(e))
            mid[n] = True
    if int(el) % 30 < 5: sample_gpu(smi, el)
    if all(p.poll() is not None for p in procs.values()): break
rcs = {n: p.poll() for n, p in procs.items()}
for p in procs.values():
    if p.poll() is None: p.kill()
for p in procs.values(): p.wait()
say("stopped; exited early:", {n: rc for n, rc in rcs.items() if rc is not None})
for n in procs:
    try: snapshot(n, "final")
    except Exception as e: say("snapshot failed", n, repr(e))
BENCH = "import sys; sys.path.insert(0, '.gpu/bin'); import devshim; from hybridlat.bench import main; " \
        "main(sys.argv[1:])"
dev = "cuda" if torch.cuda.is_available() else "cpu"
for label, cmd, limit in [] if env("EXTRAS", "1") == "0" else [
    ("reenact", [".gpu/bin/reenact_smoke.py", CLIPS, str(OUT / "reenact_smoke.json")], 60),
    ("bench", ["-c", BENCH, "--device", dev, "--resolutions", "128", "1024", "--batches", "1", "4",
               "--training-steps", "8", "--out", str(OUT / "bench.json")], 120),
]:
    try:
        r = subprocess.run([py, *cmd], capture_output=True, text=True, timeout=limit)
        say(label, "rc", r.returncode, (r.stdout + r.stderr)[-3000:])
    except subprocess.TimeoutExpired:
        say(label, "timed out after", limit, "s")
with tarfile.open(OUT / "logs.tgz", "w:gz") as tar:
    for n in procs:
        for p in [RUN / f"{n}.log", RUN / n / "log.jsonl", RUN / n / "config.json"]:
            if p.is_file(): tar.add(p, arcname=f"{n}/{p.name}")
        grids = sorted((RUN / n / "samples").glob("*.png"))
        for g in grids[-1:]: tar.add(g, arcname=f"{n}/{g.name}")
    for p in [RUN / "smi.csv", RUN / "commands.json"]: tar.add(p, arcname=p.name)
say("done", sorted(p.name for p in OUT.iterdir()))
