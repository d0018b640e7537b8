#!/usr/bin/env bash
# Size of a serve-only install (no extras: the library, ONNX Runtime and the web service) in a fresh venv.
#   bash benchmarks/install_size.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$(mktemp -d)/serve"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet "$root"
"$venv/bin/python" - <<'PY'
import sys
import numpy as np
from digitrec import Predictor
p = Predictor().predict(np.pad(np.ones((20, 4)), 8))
assert "torch" not in sys.modules
print("serve-only install reads a 1 as", p.digit)
PY
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "venv total:    $(du -sh "$venv" | cut -f1)"
echo "site-packages: $(du -sh "$site" | cut -f1)"
"$venv/bin/pip" list --format=freeze 2>/dev/null | sed 's/^/  /'
rm -rf "$(dirname "$venv")"
