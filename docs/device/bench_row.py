"The kit's generator on the GPU: median render seconds per batch (fp32), written to $OUT/gpu_bench.json."

import json, os, statistics, sys, time, torch

sys.path.insert(0, ".gpu/bin")
import devshim  # noqa: F401
from hybridlat.training.pretrained import load_pretrained

dev, rows = torch.device("cuda"), []
G = load_pretrained("faces128", device=dev)
with torch.no_grad():
    for b in (1, 4, 64):
        z = torch.randn(b, G.z_dim, device=dev)
        G(z, None)
        torch.cuda.synchronize()
        ts = []
        for _ in range(10):
            t0 = time.perf_counter()
            G(z, None)
            torch.cuda.synchronize()
            ts.append(time.perf_counter() - t0)
        rows.append(
            dict(
                model="faces128 128²",
                batch=b,
                precision="fp32",
                seconds=statistics.median(ts),
                images_per_s=b / statistics.median(ts),
                gpu=torch.cuda.get_device_name(0),
            )
        )
json.dump(rows, open(os.path.join(os.environ.get("OUT", "/tmp"), "gpu_bench.json"), "w"), indent=1)
print(rows)
