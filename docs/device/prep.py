"Rebuild on the device the exact files the kit loads from the fp16 copies that travelled (idempotent)."

import shutil, sys, torch
from pathlib import Path

R = Path(".gpu")


def half_back(sd):
    return {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}


def load(path): return torch.load(path, map_location="cpu", weights_only=False)


def main():
    a, b = R / "a", R / "b"
    if not (b / "G.pt").is_file(): return
    G, D16 = load(b / "G.pt"), load(b / "D16.pt")
    shutil.copy(b / "G.pt", "data/faces128.pt")  # exact: the motion file checks its fingerprint
    torch.save(D16 | {"state_dict": half_back(D16["state_dict"])}, "data/faces128_D.pt")
    E = load(b / "E16.pt")
    E["state_dict"] = half_back(E["state_dict"])
    # w_avg is a copy of G's, not a trained weight: float16 rounded it (the kit warns on a mismatch)
    E["state_dict"]["w_avg"] = G["state_dict"]["mapping.w_avg"].clone()
    torch.save(E, R / "encoder_init.pt")
    if not Path("data/faces128_encoder.pt").is_file():  # it stayed home: the fp16 copy stands in
        shutil.copy(R / "encoder_init.pt", "data/faces128_encoder.pt")
    print("prep: G, D, encoder init rebuilt")
    if (a / "train_skel.pt").is_file():
        skel = load(a / "train_skel.pt")
        skel["G_ema"] = {k: v.half() if v.is_floating_point() else v for k, v in G["state_dict"].items()}
        skel["D"] = D16["state_dict"]
        torch.save(skel, R / "train_resume.pt")
        print("prep: campaign checkpoint rebuilt, step", skel["step"])


if __name__ == "__main__":
    sys.exit(main())
