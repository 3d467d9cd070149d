"train_gan.main with TF32 allowed (device runs only)."

import sys, torch

sys.path.insert(0, ".gpu/bin")
import devshim  # noqa: F401

torch.backends.cuda.matmul.allow_tf32 = True
torch.backends.cudnn.allow_tf32 = True
from hybridlat.training import train_gan

if __name__ == "__main__":
    train_gan.main(sys.argv[1:])
