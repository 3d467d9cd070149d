"""Session 14: `reenact`'s model stages on the device (encode, fit, render): never run on CUDA before. Aligned
crops of a held-out clip stand in for dlib's alignment (the device has no landmark model); `reenact` itself is
tried too, in case it has. Usage: reenact_smoke.py CLIP_ZIP OUT_JSON"""

import json, sys, time, numpy as np, torch
import recipes  # noqa: F401  (devshim first)
from hybridlat.realfaces.datasets import HELD_OUT_CLIPS, FramePairDataset
from hybridlat.reenactment import reenact as R
from hybridlat.images import to_uint8
from hybridlat.training.pretrained import load_pretrained

dev = "cuda" if torch.cuda.is_available() else "cpu"
res, t0 = dict(device=dev), time.time()
G = load_pretrained("faces128", dev)
E = R.default_encoder(G)                       # the shipped encoder, moved to G's device
res["encoder_device"] = str(R.module_device(E))
val = FramePairDataset(sys.argv[1], "val", val_clips=list(HELD_OUT_CLIPS))
clip = val.clips[0]
frames = torch.stack([val.frame(clip, i) for i in range(12)])            # [12, 3, 128, 128] in [-1, 1]
crops = to_uint8(frames)
with torch.no_grad():
    src = frames[:1].to(dev)
    w_id, s_src = E.encode_identity(src), E.encode_deformation(src)
s_f = R.smooth_styles(R.hold_missing(R.encode_driving(E, crops, 8), [True] * 12), 1.0)
w_fit = R.refine_identity(G, w_id, src, s_src, steps=20)
w_fit = R.edit_identity(w_fit, {"age": 1.0})
out = R.render_frames(G, w_fit, s_f, 8)
err = float(((torch.as_tensor(out).float() - torch.as_tensor(crops).float()) / 127.5).square().mean())
res |= dict(clip=clip, frames=len(out), w_fit_device=str(w_fit.device), mse_vs_driver=err,
            seconds=time.time() - t0, ok=bool(out.shape == crops.shape))
big = to_uint8(torch.nn.functional.interpolate(frames, size=256, mode="bilinear"))   # dlib finds these
try:                                                                     # the whole pipeline, if dlib is here
    r = R.reenact(big[0], R.VideoClip(big, 10.0, np.arange(len(big)) / 10.0), G=G, progress=False,
                  refine_steps=10)
    res["reenact"] = dict(frames=len(r.crops), ok=True)
except Exception as e:                                                   # noqa: BLE001  (recorded, not hidden)
    res["reenact"] = dict(ok=False, error=f"{type(e).__name__}: {e}"[:300])
print(json.dumps(res, indent=1), flush=True)
open(sys.argv[2], "w").write(json.dumps(res, indent=1))
