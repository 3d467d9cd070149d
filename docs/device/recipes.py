"The settings the device scripts share: the faces128 architecture flags and v5's encoder recipe."
import sys

sys.path.insert(0, ".gpu/bin")
import devshim  # noqa: F401,E402  (the kit imports av and plotly at module level)
from hybridlat.realfaces.datasets import HELD_OUT_CLIPS  # noqa: E402

GAN_ARCH = ["--resolution", "128", "--channel-base", "2048", "--channel-max", "256", "--augment", "",
            "--pl-weight", "0", "--no-progress"]
ENC_RECIPE = ["--synthetic-kind", "cross", "--face-id-weight", "1.0", "--mouth-weight", "1.0",
              "--val-clips", ",".join(HELD_OUT_CLIPS), "--no-progress"]


def toy_gan(out, steps, amp="amp"):
    "A smoke run of the GAN loop on toy data at batch 64, bf16 autocast ('amp') or float32 ('no-amp')."
    return ["--data", "toy", "--out", str(out), "--batch", "64", "--steps", str(steps), f"--{amp}",
            "--workers", "2", "--sample-every", "1000", "--ckpt-every", "1000", *GAN_ARCH]


def half(sd):
    "A state dict with its float tensors in float16 (what travels back from the device)."
    return {k: v.half() if v.is_floating_point() else v for k, v in sd.items()}


def save_atomic(obj, path):
    "torch.save to `path` by way of a temporary file, so a call killed mid-write leaves no half file."
    import os, torch
    tmp = f"{path}.tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def sample_gpu(log, elapsed):
    "Append one line 'seconds,utilisation %, memory' from nvidia-smi (or the error) to the open file `log`."
    import subprocess
    q = ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader"]
    try: log.write(f"{elapsed:.0f}," + subprocess.run(q, capture_output=True, text=True, timeout=10).stdout)
    except Exception as e: log.write(f"{elapsed:.0f},{e!r}\n")
    log.flush()
