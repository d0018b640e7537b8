"""Schemathesis against a real `digitrec serve` on loopback: every operation of /openapi.json
(the admin route included), positive and negative data, every check.

    pip install schemathesis   # not a dependency of the project
    python benchmarks/fuzz_api.py [--max-examples 200] [--seed 1] [--max-time 120] [--json]

Starts `digitrec serve` on a free port of 127.0.0.1 with a throw-away feedback database and
an admin token, runs

    schemathesis --config-file CONFIG run URL/openapi.json --checks all --mode all
        --phases examples,coverage,fuzzing,stateful -H 'Authorization: Bearer TOKEN'
        --seed SEED --max-examples N --max-time T --continue-on-failure -w 1

and prints what it generated and found, and the server's log's tracebacks. Floor: no server
error, no response that breaks its schema, status or content type, no traceback.

One check is told more than its defaults. `positive_data_acceptance` expects a request that
fits the schema to be accepted, but no JSON schema can say "a picture that decodes" or "a
model that exists": schema-valid bytes that are not a picture are answered 415 or 422, as
the API documents. CONFIG adds those two statuses to what that check accepts; `--strict`
runs it with its defaults instead (it then reports one such case per picture route).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from serve_load import free_port, stop, wait_ready

HOST = "127.0.0.1"
TOKEN = "fuzz-admin-token"
CONFIG = """\
[checks.positive_data_acceptance]
# 2xx and the statuses schemathesis accepts by default, plus the API's documented answers
# to schema-valid data that is not a picture (415, 422) or not a model (422)
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "415", "422", "429"]
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=200, help="cases per operation")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-time", type=int, default=120, help="seconds, at most")
    parser.add_argument("--strict", action="store_true", help="positive_data_acceptance as is")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    st = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
    if not Path(st).exists():
        sys.exit("schemathesis is not installed: pip install schemathesis")

    port = free_port()
    url = f"http://{HOST}:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        config = tmp / "schemathesis.toml"
        config.write_text("" if args.strict else CONFIG)
        log = tmp / "serve.log"
        serve = [str(Path(sys.executable).parent / "digitrec"), "serve", "--host", HOST]
        serve += ["--port", str(port), "--db", str(tmp / "feedback.sqlite3")]
        env = {**os.environ, "DIGITREC_ADMIN_TOKEN": TOKEN}
        with open(log, "w") as out:
            proc = subprocess.Popen(serve, stdout=out, stderr=subprocess.STDOUT, env=env)
        run = [st, "--config-file", str(config), "run", f"{url}/openapi.json"]
        run += ["--checks", "all", "--mode", "all"]
        run += ["--phases", "examples,coverage,fuzzing,stateful"]
        run += ["-H", f"Authorization: Bearer {TOKEN}", "--seed", str(args.seed)]
        run += ["--max-examples", str(args.max_examples), "--max-time", str(args.max_time)]
        run += ["--continue-on-failure", "-w", "1", "--report", "json"]
        run += ["--report-dir", str(tmp / "report")]
        try:
            wait_ready(url, proc)
            done = subprocess.run(run, capture_output=True, text=True, timeout=args.max_time + 120)
        finally:
            stop(proc)
        reports = sorted((tmp / "report").glob("json-*.json"))
        if not reports:
            sys.exit(f"schemathesis wrote no report:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        report = json.loads(reports[-1].read_text())
        text = log.read_text()

    failures = {f["code"]: f["count"] for f in report["failures"]}
    figures = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "schemathesis": report["schemathesis_version"],
        "command": " ".join(run).replace(TOKEN, "TOKEN").replace(str(tmp), "TMP"),
        "positive_data_acceptance": "defaults" if args.strict else CONFIG.splitlines()[-1],
        "operations": report["operations"],
        "phases": {k: v["status"] for k, v in report["phases"].items()},
        "test_cases": report["test_cases"],
        "failures": report["failures"],
        "errors": report["errors"],
        "tracebacks_in_log": text.count("Traceback"),
        "exit_code": report["exit_code"],
    }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"{figures['date']}  schemathesis {figures['schemathesis']}")
        print(f"command: {figures['command']}")
        print(f"operations: {report['operations']}")
        print(f"phases: {figures['phases']}")
        print(f"test cases: {report['test_cases']}")
        print(f"failures: {failures or 'none'}; errors: {len(report['errors'])}")
        print(f"tracebacks in the server's log: {figures['tracebacks_in_log']}")
        if report["failures"]:
            print(done.stdout[-6000:])
    ok = not report["failures"] and not report["errors"] and not figures["tracebacks_in_log"]
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
