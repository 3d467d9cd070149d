"Rebuild on the device the exact files the kit loads from the fp16 copies that travelled (idempotent)."

import shutil, sys, torch
from pathlib import Path

R = Path(".gpu")


def half_back(sd):
    return {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}


def main():
    b = R / "b"
    if (b / "G.pt").is_file():
        shutil.copy(b / "G.pt", "data/faces128.pt")
        D = torch.load(b / "D16.pt", map_location="cpu", weights_only=False)
        D["state_dict"] = half_back(D["state_dict"])
        torch.save(D, "data/faces128_D.pt")
        E = torch.load(b / "E16.pt", map_location="cpu", weights_only=False)
        E["state_dict"] = half_back(E["state_dict"])
        # w_avg is a copy of G's, not a trained weight: float16 rounded it (the kit warns on a mismatch)
        G = torch.load(b / "G.pt", map_location="cpu", weights_only=False)["state_dict"]
        E["state_dict"]["w_avg"] = G["mapping.w_avg"].clone()
        torch.save(E, R / "encoder_init.pt")
        print("prep: G, D, encoder init rebuilt")
    a = R / "a"
    if (a / "train_skel.pt").is_file() and (b / "G.pt").is_file():
        skel = torch.load(a / "train_skel.pt", map_location="cpu", weights_only=False)
        G = torch.load(b / "G.pt", map_location="cpu", weights_only=False)["state_dict"]
        D = torch.load(b / "D16.pt", map_location="cpu", weights_only=False)["state_dict"]
        skel["G_ema"] = {k: v.half() if v.is_floating_point() else v for k, v in G.items()}
        skel["D"] = D
        torch.save(skel, R / "train_resume.pt")
        print("prep: campaign checkpoint rebuilt, step", skel["step"])


if __name__ == "__main__":
    sys.exit(main())
