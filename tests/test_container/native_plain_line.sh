/data/s2/venv/bin/s2kit worker --run-dir /data/s2/runs/r1 --batch all --offset 0
