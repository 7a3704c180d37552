# Source this after the peer benchmark's mailproc-env.sh to run its `mailproc-pipe` slot (one
# `ingest -` process per mail, as an MTA pipe) with `mailproc run` listening on [daemon] socket,
# so that each pipe process hands its mail to the daemon:
#
#   source ../shared/peerbench/mailproc-env.sh .
#   source bench/peer-handoff.sh .
#   python3 ../shared/peerbench/run_peers.py --only roundup-pipe-fastpw,mailproc-pipe --sizes 2000 --pipe-n 50
#   cat /tmp/peerbench/runs/mailproc-pipe-50-*/daemon-cpu.txt   # the daemon's CPU per run
#
# The harness times the pipe processes only; bench/peer_daemon.py starts the daemon in a run's
# (untimed) set-up, and before its export writes the daemon's CPU for the run's mails to
# daemon-cpu.txt in the run's folder, to be added to the harness's figure.
MP_CHECKOUT=${1:?project checkout}
MP_BIN=${MAILPROC_VENV:-$MP_CHECKOUT/.venv}/bin/mailproc
MP_DAEMON="python3 $(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/peer_daemon.py"
MP_SOCKET_CFG=${MAILPROC_BENCH_SOCKET_CONFIG:-/tmp/peerbench/mailproc-socket.toml}
python3 - "${MAILPROC_BENCH_CONFIG:-/tmp/peerbench/mailproc.toml}" "$MP_SOCKET_CFG" <<'PY'
import re, sys
text = open(sys.argv[1]).read().split("\n# Mail sources:", 1)[0]  # no mailbox to connect to
text = text.replace('# socket = "/run/mailproc/ingest.sock"', 'socket = "/tmp/peerbench/in.sock"')
text = re.sub(r"(?m)^send_outbox_seconds = \d+", "send_outbox_seconds = 86400", text)
open(sys.argv[2], "w").write(text)
PY
export MAILPROC_INIT="$MP_DAEMON start {work} $MP_SOCKET_CFG $MP_BIN"
export MAILPROC_PIPE_CMD="MAILPROC_DATABASE_URL=sqlite:///{work}/m.db $MP_BIN --config $MP_SOCKET_CFG ingest -q -"
export MAILPROC_EXPORT="$MP_DAEMON stop {work} && $MAILPROC_EXPORT"
unset MAILPROC_CMD  # the pipe slot only: a folder's ingest has no daemon to hand to
