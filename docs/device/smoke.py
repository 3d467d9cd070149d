"Call 1 on the device: the CUDA paths never run before (encoder loop, bf16 GAN loop, 1024² render, timings)."

import json, os, statistics, subprocess, sys, torch
from pathlib import Path
from recipes import ENC_RECIPE, toy_gan
from hybridlat.bench import median_seconds, run_benchmark, format_table
from hybridlat.stylegan2.generator import Generator, config_f_kwargs

OUT = Path(os.environ.get("OUT", "/tmp/out"))
OUT.mkdir(parents=True, exist_ok=True)
dev = "cuda" if torch.cuda.is_available() else "cpu"
res = dict(torch=torch.__version__, device=dev, gpu=torch.cuda.get_device_name(0) if dev == "cuda" else None)
print(res, flush=True)
py, steps = sys.executable, int(os.environ.get("SMOKE_STEPS", 12))
R = int(os.environ.get("SMOKE_RES", 1024))  # config-f resolution (a CPU try: 32)


def start(script, args, log):
    return subprocess.Popen([py, script, *args], stdout=open(OUT / log, "w"), stderr=subprocess.STDOUT)


enc = start(".gpu/bin/enc_main.py", ["--clips", ".gpu/b/clips128.zip", "--out", "/tmp/smoke_enc", "--gan",
            "faces128", "--init", ".gpu/encoder_init.pt", "--batch", "32", "--synthetic", "32", "--steps",
            str(steps), "--still-fraction", "0", "--workers", "4", "--sample-every", "1000", "--ckpt-every",
            "1000", *ENC_RECIPE], "smoke_enc.log")
gans = {amp: start(".gpu/bin/gan_main.py", toy_gan(f"/tmp/smoke_gan_{amp}", 2 * steps, amp),
                   f"smoke_gan_{amp}.log") for amp in ("amp", "no-amp")}
for p in gans.values(): p.wait()

# the kit's own benchmark on this device: faces128, small-128 and config-f R² (random weights)
bench = run_benchmark(resolutions=(R,), batches=(1, 4, 64), repeats=5, progress=False, device=dev)
print(format_table(bench), flush=True)
res["bench"] = bench
rows = []  # config-f R² under bf16 autocast, beside the benchmark's float32 rows
with torch.no_grad():
    G = Generator(**config_f_kwargs(R)).to(dev).eval()
    for b in (1, 4):
        z = torch.randn(b, G.z_dim, device=dev)
        def render():
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev == "cuda"): return G(z, None)
        rows.append(dict(batch=b, precision="bf16", seconds=median_seconds(render, 5, 1, dev)[0],
                         finite=bool(torch.isfinite(render().float()).all())))
res["config_f_bf16"] = rows
if dev == "cuda": res["max_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
enc.wait()
for name in ["smoke_enc", "smoke_gan_amp", "smoke_gan_no-amp"]:
    log = Path("/tmp") / name / "log.jsonl"
    recs = [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []
    secs = [r["sec"] for r in recs if "sec" in r]
    res[name] = dict(steps=len(recs), median_sec=statistics.median(secs[2:]) if len(secs) > 3 else None)
res["enc_rc"], res["gan_rc"] = enc.returncode, {k: p.returncode for k, p in gans.items()}
Path(".gpu/state").mkdir(exist_ok=True)
if enc.returncode == 0: Path(".gpu/state/enc_ok").write_text("ok")
(OUT / "smoke.json").write_text(json.dumps(res, indent=1))
print(json.dumps({k: v for k, v in res.items() if k != "bench"}, indent=1))
