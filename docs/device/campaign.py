"""Call 2 on the device: the faces128 GAN campaign and the encoder side by side on one GPU until a deadline;
snapshots of both go to $OUT as they come (fp16), logs at the end. Usage: campaign.py SECONDS_OF_TRAINING"""

import json, os, subprocess, sys, tarfile, time, traceback, torch
from pathlib import Path

T0, SPAN = time.time(), float(sys.argv[1])
OUT, RUN = Path(os.environ.get("OUT", "/tmp/out")), Path(".gpu/run")
OUT.mkdir(parents=True, exist_ok=True)
RUN.mkdir(parents=True, exist_ok=True)
py = sys.executable


def say(*a):
    print(f"[{time.time() - T0:6.1f}s]", *a, flush=True)


subprocess.run([py, ".gpu/bin/prep.py"], check=True)
VAL = (
    "dreamtalk_mead_W009_front_happy_level3_001,dreamtalk_mead_W009_front_surprised_level3_001,"
    "lia_vox_driving2,liveportrait_d6,sadtalker_WDA_KatieHill_000"
)
GAN = [
    "--data",
    ".gpu/a/faces128.zip",
    "--out",
    str(RUN / "gan"),
    "--resume",
    ".gpu/train_resume.pt",
    "--resolution",
    "128",
    "--batch",
    os.environ.get("GAN_BATCH", "64"),
    "--kimg",
    "100000",
    "--channel-base",
    "2048",
    "--channel-max",
    "256",
    "--augment",
    "",
    "--pl-weight",
    "0",
    "--r1-gamma",
    "0.2",
    "--no-amp",
    "--workers",
    "5",
    "--sample-every",
    "2000",
    "--ckpt-every",
    os.environ.get("GAN_CKPT", "500"),
    "--no-progress",
]
ENC = [
    "--faces",
    os.environ.get("ENC_FACES", ".gpu/a/faces128.zip"),
    "--clips",
    ".gpu/b/clips128.zip",
    "--out",
    str(RUN / "enc"),
    "--gan",
    "faces128",
    "--init",
    ".gpu/encoder_init.pt",
    "--batch",
    os.environ.get("ENC_BATCH", "32"),
    "--steps",
    "1000000",
    "--lr",
    "1e-4",
    "--workers",
    "4",
    "--no-progress",
    "--sample-every",
    "500",
    "--ckpt-every",
    os.environ.get("ENC_CKPT", "100"),
    "--synthetic",
    os.environ.get("ENC_BATCH", "32"),
    "--synthetic-kind",
    "cross",
    "--face-id-weight",
    "1.0",
    "--mouth-weight",
    "1.0",
    "--val-clips",
    VAL,
]
run_enc = Path(".gpu/state/enc_ok").is_file() or os.environ.get("FORCE_ENC")
SMOKE = [
    "--data",
    "toy",
    "--out",
    str(RUN / "gan"),
    "--resolution",
    "128",
    "--batch",
    "64",
    "--steps",
    "40",
    "--channel-base",
    "2048",
    "--channel-max",
    "256",
    "--augment",
    "",
    "--pl-weight",
    "0",
    "--amp",
    "--workers",
    "2",
    "--sample-every",
    "1000",
    "--ckpt-every",
    "1000",
    "--no-progress",
]
GAN = GAN if os.environ.get("RUN_GAN", "1") == "1" else SMOKE
procs = {
    "gan": subprocess.Popen(
        [py, ".gpu/bin/gan_main.py", *GAN], stdout=open(RUN / "gan.log", "w"), stderr=subprocess.STDOUT
    )
}
if run_enc:
    procs["enc"] = subprocess.Popen(
        [py, ".gpu/bin/enc_main.py", *ENC], stdout=open(RUN / "enc.log", "w"), stderr=subprocess.STDOUT
    )
(RUN / "commands.json").write_text(json.dumps({"gan": GAN, "enc": ENC if run_enc else None}, indent=1))
say("started", list(procs))


def load(p):
    return torch.load(p, map_location="cpu", weights_only=False)


def half(sd):
    return {k: v.half() if v.is_floating_point() else v for k, v in sd.items()}


def save(obj, name):
    tmp = OUT / (name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, OUT / name)
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
if GAN is SMOKE:
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
            try:
                smi.write(
                    f"{el:.0f},"
                    + subprocess.run(
                        ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader"],
                        capture_output=True,
                        text=True,
                        timeout=10,
                    ).stdout
                )
                smi.flush()
            except Exception as e:
                smi.write(f"{el:.0f},{e!r}\n")
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
for fn in ([] if GAN is SMOKE else [lambda: gan_snapshot("final", full=True)]) + [
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
