"Call 1 on the device: the CUDA paths never run before (encoder loop, bf16 GAN loop, 1024² render, timings)."

import json, os, statistics, subprocess, sys, time, torch
from pathlib import Path

sys.path.insert(0, ".gpu/bin")
import devshim  # noqa: F401

OUT = Path(os.environ.get("OUT", "/tmp/out"))
OUT.mkdir(parents=True, exist_ok=True)
res = dict(torch=torch.__version__, cuda=torch.cuda.is_available())
print(res, flush=True)
dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
if dev.type == "cuda":
    res["gpu"] = torch.cuda.get_device_name(0)
py, val = (
    sys.executable,
    (
        "dreamtalk_mead_W009_front_happy_level3_001,dreamtalk_mead_W009_front_surprised_level3_001,"
        "lia_vox_driving2,liveportrait_d6,sadtalker_WDA_KatieHill_000"
    ),
)
steps = int(os.environ.get("SMOKE_STEPS", 12))
enc = subprocess.Popen(
    [
        py,
        ".gpu/bin/enc_main.py",
        "--clips",
        ".gpu/b/clips128.zip",
        "--out",
        "/tmp/smoke_enc",
        "--gan",
        "faces128",
        "--init",
        ".gpu/encoder_init.pt",
        "--batch",
        "32",
        "--steps",
        str(steps),
        "--still-fraction",
        "0",
        "--workers",
        "4",
        "--no-progress",
        "--sample-every",
        "1000",
        "--ckpt-every",
        "1000",
        "--synthetic",
        "32",
        "--synthetic-kind",
        "cross",
        "--face-id-weight",
        "1.0",
        "--mouth-weight",
        "1.0",
        "--val-clips",
        val,
    ],
    stdout=open(OUT / "smoke_enc.log", "w"),
    stderr=subprocess.STDOUT,
)
gans = {}
for amp in ("amp", "no-amp"):
    gans[amp] = subprocess.Popen(
        [
            py,
            ".gpu/bin/gan_main.py",
            "--data",
            "toy",
            "--out",
            f"/tmp/smoke_gan_{amp}",
            "--resolution",
            "128",
            "--batch",
            "64",
            "--steps",
            str(2 * steps),
            "--channel-base",
            "2048",
            "--channel-max",
            "256",
            "--augment",
            "",
            "--pl-weight",
            "0",
            f"--{amp}",
            "--workers",
            "2",
            "--sample-every",
            "1000",
            "--ckpt-every",
            "1000",
            "--no-progress",
        ],
        stdout=open(OUT / f"smoke_gan_{amp}.log", "w"),
        stderr=subprocess.STDOUT,
    )
    gans[amp].wait()


def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, repeats=5):
    fn()
    sync()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


from hybridlat.stylegan2.generator import Generator, config_f_kwargs
from hybridlat.training.pretrained import load_pretrained

rows = []
with torch.no_grad():
    G = Generator(**config_f_kwargs(1024)).to(dev).eval()
    for b in (1, 4):
        z = torch.randn(b, G.z_dim, device=dev)
        for prec in ("fp32", "bf16"):

            def f():
                with torch.autocast(
                    "cuda", dtype=torch.bfloat16, enabled=prec == "bf16" and dev.type == "cuda"
                ):
                    return G(z, None)

            img = f()
            rows.append(
                dict(
                    model="config-f 1024² (random weights)",
                    batch=b,
                    precision=prec,
                    seconds=timed(f),
                    finite=bool(torch.isfinite(img.float()).all()),
                    shape=list(img.shape),
                )
            )
            print(rows[-1], flush=True)
    del G
    G = load_pretrained("faces128", device=dev)
    for b in (1, 4, 64):
        z = torch.randn(b, G.z_dim, device=dev)
        f = lambda: G(z, None)
        rows.append(dict(model="faces128 128²", batch=b, precision="fp32", seconds=timed(f)))
        print(rows[-1], flush=True)
res["render"] = rows
if dev.type == "cuda":
    res["max_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
enc.wait()
for name in ["smoke_enc", "smoke_gan_amp", "smoke_gan_no-amp"]:
    log = Path("/tmp") / name / "log.jsonl"
    recs = [json.loads(l) for l in log.read_text().splitlines()] if log.is_file() else []
    secs = [r["sec"] for r in recs if "sec" in r]
    res[name] = dict(
        steps=len(recs),
        median_sec=statistics.median(secs[2:]) if len(secs) > 3 else None,
        last={k: v for k, v in (recs[-1] if recs else {}).items() if isinstance(v, (int, float))},
    )
res["enc_rc"], res["gan_rc"] = enc.returncode, {k: p.returncode for k, p in gans.items()}
Path(".gpu/state").mkdir(exist_ok=True)
if enc.returncode == 0:
    Path(".gpu/state/enc_ok").write_text("ok")
(OUT / "smoke.json").write_text(json.dumps(res, indent=1))
print(json.dumps(res, indent=1))
