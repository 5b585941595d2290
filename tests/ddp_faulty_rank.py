"""`emnist-cnn` for torchrun, with one rank made to fail at one epoch (tests of failure handling in DDP).

FAULT_RANK and FAULT_EPOCH (0-based) pick where; FAULT=crash raises, FAULT=hang sleeps until killed.
"""
import os
import sys
import time

import emnist_cnn.training.loop as train_mod
from emnist_cnn.cli import main

real_epoch = train_mod.train_one_epoch


def faulty_epoch(*args, **kw):
    if os.environ["RANK"] == os.environ["FAULT_RANK"] and args[6] == int(os.environ["FAULT_EPOCH"]):
        if os.environ["FAULT"] == "hang":
            time.sleep(3600)
        raise RuntimeError(f"injected failure in rank {os.environ['RANK']}")
    return real_epoch(*args, **kw)


train_mod.train_one_epoch = faulty_epoch
sys.exit(main())
