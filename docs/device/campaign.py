"""Call 2 on the device: the faces128 GAN campaign and the encoder side by side on one GPU until a deadline;
snapshots of both go to $OUT as they come (fp16), logs at the end. Usage: campaign.py SECONDS_OF_TRAINING"""

import json, os, subprocess, sys, tarfile, time, traceback, torch
from pathlib import Path
from recipes import ENC_RECIPE, GAN_ARCH, half, sample_gpu, save_atomic, toy_gan

T0, SPAN = time.time(), float(sys.argv[1])
OUT, RUN = Path(os.environ.get("OUT", "/tmp/out")), Path(".gpu/run")
OUT.mkdir(parents=True, exist_ok=True)
RUN.mkdir(parents=True, exist_ok=True)
py = sys.executable


def say(*a):
    print(f"[{time.time() - T0:6.1f}s]", *a, flush=True)


subprocess.run([py, ".gpu/bin/prep.py"], check=True)

env = os.environ.get
GAN = ["--data", ".gpu/a/faces128.zip", "--out", str(RUN / "gan"), "--resume", ".gpu/train_resume.pt",
       "--batch", env("GAN_BATCH", "64"), "--kimg", "100000", "--r1-gamma", "0.2", "--no-amp",
       "--workers", "5", "--sample-every", "2000", "--ckpt-every", env("GAN_CKPT", "500"), *GAN_ARCH]
ENC = ["--faces", env("ENC_FACES", ".gpu/a/faces128.zip"), "--clips", ".gpu/b/clips128.zip",
       "--out", str(RUN / "enc"), "--gan", "faces128", "--init", ".gpu/encoder_init.pt",
       "--batch", env("ENC_BATCH", "32"), "--synthetic", env("ENC_BATCH", "32"), "--steps", "1000000",
       "--lr", "1e-4", "--workers", "4", "--sample-every", "500", "--ckpt-every", env("ENC_CKPT", "100"),
       *ENC_RECIPE]
run_enc = Path(".gpu/state/enc_ok").is_file() or env("FORCE_ENC")
TOY = env("RUN_GAN", "1") != "1"  # then only a 40-step bf16 smoke of the GAN loop on toy data
GAN = toy_gan(RUN / "gan", 40) if TOY else GAN


def start(script, args, log):
    return subprocess.Popen([py, script, *args], stdout=open(RUN / log, "w"), stderr=subprocess.STDOUT)


procs = {"gan": start(".gpu/bin/gan_main.py", GAN, "gan.log")}
if run_enc: procs["enc"] = start(".gpu/bin/enc_main.py", ENC, "enc.log")
(RUN / "commands.json").write_text(json.dumps({"gan": GAN, "enc": ENC if run_enc else None}, indent=1))
say("started", list(procs))


def load(p):
    return torch.load(p, map_location="cpu", weights_only=False)


def save(obj, name):
    save_atomic(obj, OUT / name)
    say("wrote", name, obj.get("step"))


def gan_snapshot(name, full=False):
    ck = load(RUN / "gan" / "checkpoint.pt")
    keys = (
        "format",
        "version",
        "config",
        "G_kwargs",
        "D_kwargs",
        "step",
        "images_seen",
        "pl_mean",
        "world_size",
    )
    base = {k: ck[k] for k in keys if k in ck}
    save(base | {"G_ema": half(ck["G_ema"])}, f"g_ema_{name}.pt")
    if full:
        save(base | {"G": half(ck["G"]), "D": half(ck["D"])}, f"g_GD_{name}.pt")


def enc_snapshot(name):
    ck = load(RUN / "enc" / "checkpoint.pt")
    save(
        {k: ck[k] for k in ("config", "E_kwargs", "G_fingerprint", "step", "images_seen", "wall_s")}
        | {"E": half(ck["E"])},
        f"enc_{name}.pt",
    )


plan = [(SPAN / 3, "gan", "a"), (SPAN / 2, "enc", "a"), (2 * SPAN / 3, "gan", "b")]
if TOY:
    plan = [p for p in plan if p[1] == "enc"]
smi, seen = open(RUN / "smi.csv", "w"), set()
try:
    while time.time() - T0 < SPAN:
        time.sleep(5)
        el = time.time() - T0
        for i, (at, kind, name) in enumerate(plan):
            if at is not None and el >= at and (RUN / kind / "checkpoint.pt").is_file():
                try:
                    gan_snapshot(name) if kind == "gan" else enc_snapshot(name)
                except Exception:
                    traceback.print_exc()
                plan[i] = (None, kind, name)
        if int(el) % 30 < 5:
            sample_gpu(smi, el)
        dead = [k for k, p in procs.items() if p.poll() is not None]
        if set(dead) - seen:
            say("exited early:", {k: procs[k].returncode for k in dead})
        seen = set(dead)
        if len(dead) == len(procs) or "enc" in dead:
            break
except Exception:
    traceback.print_exc()
for p in procs.values():
    if p.poll() is None:
        p.kill()
for p in procs.values():
    p.wait()
say("stopped")
for fn in ([] if TOY else [lambda: gan_snapshot("final", full=True)]) + [
    lambda: enc_snapshot("final")
]:
    try:
        fn()
    except Exception:
        traceback.print_exc()
with tarfile.open(OUT / "logs.tgz", "w:gz") as tar:
    for p in [
        RUN / "gan.log",
        RUN / "enc.log",
        RUN / "smi.csv",
        RUN / "commands.json",
        *[RUN / k / f for k in ("gan", "enc") for f in ("log.jsonl", "config.json")],
    ]:
        if p.is_file():
            tar.add(p, arcname=str(p.relative_to(RUN)))
    for k in ("gan", "enc"):
        grids = sorted((RUN / k / "samples").glob("*.png"))
        for g in grids[:1] + grids[-2:]:
            tar.add(g, arcname=f"{k}_{g.name}")
say("done", sorted(p.name for p in OUT.iterdir()))
