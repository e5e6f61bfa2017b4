"""One add of 10,000 synthetic documents (default 64-document chunks) into a built 30,000-document
index, timed for the checkout given as the first argument (run once per revision):

    python scripts/bench_scale.py --docs 30000 --train-docs 20000 --batch 10000 --queries 5 \\
        --no-exhaustive --keep --path /tmp/exp/scale-main.lateint
    PYTHONPATH=<checkout> python scripts/bench_list_merge.py <checkout> <label>
"""

import shutil
import sys
import time

sys.path.insert(0, sys.argv[1] + "/scripts")
from synthetic import Generator, VectorsOnly

import lateint_lite as li

src, dst = "/tmp/exp/scale-main.lateint", f"/tmp/exp/add64-{sys.argv[2]}.lateint"
shutil.copyfile(src, dst)
gen = Generator(128)
docs = gen.batch(30000, 40000)
with li.open(dst, encoder=VectorsOnly(128), auto_build=False) as idx:
    t = time.perf_counter()
    idx.add(docs)  # default chunks of 64 documents
    print(sys.argv[2], "add of 10,000 docs (64-doc chunks):", round(time.perf_counter() - t, 1), "s", idx.check().ok)
