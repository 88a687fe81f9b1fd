# Sourced by run.sh and test.sh: create .venv and install requirements.txt when it changed.
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha256
wanted=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "installing requirements.txt into .venv (first run takes a few minutes)" >&2
  # (the filter drops pip's notes about local index folders some machines configure but lack)
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "installing requirements.txt failed" >&2; exit 1; }
  # numba compiles UMAP's loops on the first map and caches them on disk: do it once here (about a minute on 2
  # cores), not in each process that draws its first map at the same time (the test processes, the app).
  .venv/bin/python -c "from curation.maps import compile_ahead; compile_ahead()" \
    || echo "UMAP's compiled code could not be cached ahead; the first map compiles it" >&2
  echo "$wanted" > "$stamp"
fi
