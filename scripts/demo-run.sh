#!/usr/bin/env bash
# scripts/demo-run.sh -- the demo itself, run as an unprivileged user by
# scripts/demo.sh: a temporary cluster with hubsync preloaded, the fake
# HubSpot on a free loopback port, and a short scripted show.
# HUBSYNC_DEMO_INBOUND=journal: HubSpot's changes come in through the
# Webhooks Journal (hubsync.journal_interval) and no receiver port is
# opened; otherwise (webhooks) the fake posts webhooks to the receiver.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/hubsync-demo.XXXXXX)
PGDATA=$WORK/data
FAKE_PID=
MODE=${HUBSYNC_DEMO_INBOUND:-webhooks}
case $MODE in webhooks | journal) ;; *) echo "HUBSYNC_DEMO_INBOUND must be webhooks or journal" >&2; exit 2 ;; esac

cleanup() {
	pg_ctl -D "$PGDATA" -m immediate stop >/dev/null 2>&1 || true
	[ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '\n\033[1m--- %s\033[0m\n' "$*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

step "starting the fake HubSpot"
python3 "$ROOT/test/fake_hubspot.py" --port 0 >"$WORK/fake.out" 2>"$WORK/fake.log" &
FAKE_PID=$!
for _ in $(seq 50); do [ -s "$WORK/fake.out" ] && break; sleep 0.1; done
FAKE_PORT=$(head -1 "$WORK/fake.out")
FAKE=http://127.0.0.1:$FAKE_PORT
echo "fake HubSpot listening on $FAKE"

step "creating a throwaway PostgreSQL cluster with hubsync preloaded"
PGPORT=$(free_port)
HOOK_PORT=$(free_port)
initdb -D "$PGDATA" -A trust -U postgres >/dev/null
cat >>"$PGDATA/postgresql.conf" <<EOC
listen_addresses = ''
unix_socket_directories = '$WORK'
port = $PGPORT
shared_preload_libraries = 'hubsync'
hubsync.database = 'postgres'
hubsync.api_base_url = '$FAKE'
hubsync.app_id = 54321
hubsync.rate_limit = 190
EOC
if [ "$MODE" = journal ]; then
	# no public URL needed: the pull worker reads HubSpot's journal every 500 ms
	printf "hubsync.journal_interval = '500ms'\nhubsync.portal_id = 62515\n" >>"$PGDATA/postgresql.conf"
else
	echo "hubsync.webhook_port = $HOOK_PORT" >>"$PGDATA/postgresql.conf"
fi
pg_ctl -D "$PGDATA" -l "$WORK/postgres.log" -w start >/dev/null
export PGHOST=$WORK PGPORT PGUSER=postgres PGDATABASE=postgres
sql() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

# point the fake's webhook sender at hubsync's receiver (webhooks mode)
[ "$MODE" = webhooks ] && curl -s -X POST "$FAKE/_fake/config" -H 'Content-Type: application/json' \
	-d "{\"webhookUrl\": \"http://127.0.0.1:$HOOK_PORT/hubspot/webhooks\"}" >/dev/null

step "CREATE EXTENSION hubsync; set the private-app token and the app's client secret"
sql -c "CREATE EXTENSION hubsync" \
	-c "SELECT hubsync.set_credentials(access_token => 'test-token', client_secret => 'hubsync-test-secret')"
if [ "$MODE" = journal ]; then
	# the journal takes only the app's client-credentials token
	sql -c "SELECT hubsync.set_credentials(oauth_client_id => 'hubsync-client-id', oauth_client_secret => 'hubsync-oauth-secret')"
fi
# the workers start at once; wait until the receiver listens
for _ in $(seq 50); do
	[ "$(sql -Atc "SELECT count(*) FROM hubsync.worker_status() WHERE state = 'running'")" = 3 ] && break
	sleep 0.1
done
sql -c "SELECT worker, state FROM hubsync.worker_status()"
if [ "$MODE" = journal ]; then
	step "journal mode: hubsync creates its Webhooks Journal subscriptions"
	for _ in $(seq 100); do
		[ "$(sql -Atc "SELECT count(*) > 0 AND bool_and(state = 'active') FROM hubsync.journal_subscriptions")" = t ] &&
			[ "$(sql -Atc "SELECT coalesce((SELECT started FROM hubsync.journal_state), false)")" = t ] && break
		sleep 0.1
	done
	sql -c "SELECT object_type, subscription_type, state, hubspot_id FROM hubsync.journal_subscriptions WHERE object_type IN ('contacts', 'deals') ORDER BY 1, 2"
fi

step "an app inserts a contact and a deal with plain SQL"
sql <<'EOS'
INSERT INTO hubspot.contacts (email, firstname, lastname, jobtitle)
VALUES ('ann@example.com', 'Ann', 'Lee', 'CTO');
INSERT INTO hubspot.deals (dealname, amount, dealstage, pipeline, closedate)
VALUES ('Acme renewal', 12500.00, 'appointmentscheduled', 'default', '2026-12-31 12:00Z');
SELECT hubsync.await_synced('deals', hubsync_id, '10s') AS deal_sync FROM hubspot.deals;
SELECT email, hs_object_id FROM hubspot.contacts;
SELECT dealname, amount, dealstage, hs_object_id FROM hubspot.deals;
EOS

step "what the fake HubSpot now holds"
curl -s "$FAKE/_fake/records/deals" | python3 -c '
import json, sys
for r in json.load(sys.stdin)["results"]:
    p = r["properties"]
    print("deal %s: %s, amount %s, stage %s, closedate %s" % (r["id"], p.get("dealname"), p.get("amount"), p.get("dealstage"), p.get("closedate")))'

step "a rep moves the deal to closedwon in HubSpot"
DEAL_ID=$(sql -Atc "SELECT hs_object_id FROM hubspot.deals")
curl -s -X POST "$FAKE/_fake/ui/deals/$DEAL_ID" -H 'Content-Type: application/json' \
	-d '{"properties": {"dealstage": "closedwon"}}' >/dev/null
arrived=no
for _ in $(seq 150); do
	if [ "$(sql -Atc "SELECT dealstage FROM hubspot.deals")" = closedwon ]; then arrived=yes; break; fi
	sleep 0.1
done
if [ $arrived = yes ]; then
	if [ "$MODE" = journal ]; then
		echo "read from the Webhooks Journal: hubspot.deals now says closedwon"
		sql -c "SELECT entries, events, current_offset FROM hubsync.journal_state"
	else
		echo "the webhook arrived: hubspot.deals now says closedwon"
	fi
	sql -c "SELECT direction, object_type, op, origin, properties FROM hubsync.changes ORDER BY id"
else
	echo "the change has not arrived yet (inbound sync needs the webhook receiver or the journal)"
fi

step "hubsync.status"
sql -c "SELECT object_type, pending, in_flight, dead_letters FROM hubsync.status WHERE object_type IN ('contacts', 'deals')"
echo
echo "demo finished; the cluster and the fake are being removed"
