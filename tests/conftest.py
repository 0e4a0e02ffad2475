import os
from pathlib import Path

import pytest

# One thread per process: the suite runs on 2-core machines next to other work.
os.environ.setdefault("OMP_NUM_THREADS", "1")

DATA = Path(__file__).parent / "data"
ANI_SAMPLE = DATA / "ani1x_ani1ccx_sample" / "ani1_n5.hdf5"
MD17_DB = DATA / "schnetpack_md17_ethanol" / "test_ethanol.db"


@pytest.fixture
def ani_path():
    return ANI_SAMPLE


@pytest.fixture
def md17_db_path():
    return MD17_DB
