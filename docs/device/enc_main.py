"train_encoder.main with the descriptor port patched and TF32 allowed (device runs only)."

import sys, torch

sys.path.insert(0, ".gpu/bin")
import devshim  # noqa: F401

sys.path.insert(0, ".gpu/bin")
import facenet_patch  # noqa: F401

torch.backends.cuda.matmul.allow_tf32 = True
torch.backends.cudnn.allow_tf32 = True
from hybridlat.reenactment import train_encoder

if __name__ == "__main__":
    train_encoder.main(sys.argv[1:])
