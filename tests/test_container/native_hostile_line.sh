'/data/dir with spaces '"'"'quote'"'"' "dq" $HOME ünïcødé/venv/bin/s2kit' worker --run-dir '/data/dir with spaces '"'"'quote'"'"' "dq" $HOME ünïcødé/runs/r1' --batch all --offset 0
