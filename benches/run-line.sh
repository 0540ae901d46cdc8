# The first line of a benchmark's JSON lines: what was run, when, on what
# (benches/tables.py gives it as the table's caption). Sourced by the
# benchmark scripts; git, python3 and /proc/loadavg as they are at the start
# (changes to Markdown files alone do not count as uncommitted).
#
#   run_line BENCHMARK "COMMAND" [KEY=VALUE ...] >"$OUT"
run_line() {
    python3 - "$@" <<'PY'
import json, os, subprocess, sys, time
bench, command, *extra = sys.argv[1:]
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
if commit and subprocess.run(["git", "diff", "--quiet", "HEAD", "--", ".", ":!*.md"]).returncode != 0:
    commit += " with uncommitted changes"
run = {"benchmark": bench, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": commit,
       "cores": os.cpu_count(), "load": " ".join(open("/proc/loadavg").read().split()[:3]), "command": command}
run.update(kv.split("=", 1) for kv in extra)
print(json.dumps({"run": run}))
PY
}
