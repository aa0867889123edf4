"""Campaign reports at scale: N message rows on PostgreSQL (ten campaigns to the same
N/10 contacts, in every status, with clicks, conversions, opt-outs and complaints),
then one campaign's report in total and by each grouping; figures printed.

    .venv/bin/python bench/bench_report.py --size 10000000
Target (issue 6): a campaign report under 2 s at 10,000,000 message rows.

Rows are generated in the database (``generate_series``), as a bulk load would leave
them. Each report runs twice: cold (the scan of the campaign's messages, what counts
for the target) and viewed again (that scan kept, the rest read afresh).
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url

from echelon.analytics.reports import campaign_report, channel_health, dashboard
from echelon.campaigns.service import create_campaign
from echelon.content.templates import create_template
from echelon.db.engine import create_db_engine
from echelon.db.migrate import upgrade
from echelon.workspaces.service import create_workspace
from support import POSTGRES, scratch_postgres

CAMPAIGNS = 10
REPORTED = "活动5"
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)

CONTACTS_SQL = """
INSERT INTO contacts (workspace_id, phone, carrier, province, created_at, updated_at)
SELECT :w, '+86138' || lpad(i::text, 8, '0'),
       (ARRAY['china_mobile','china_unicom','china_telecom','china_broadnet'])[1 + i % 4],
       (ARRAY['广东','浙江','江苏','北京','上海','四川','山东','河南'])[1 + (i / 4) % 8],
       :now, :now
FROM generate_series(1, :n) AS i
"""

# One campaign's messages: every contact, in the proportions a real send ends with.
MESSAGES_SQL = """
INSERT INTO messages (workspace_id, contact_id, phone, carrier, province, campaign_id, kind,
    text, text_hash, parts, cost_e4, status, block_reason, error_code, variant, due_at,
    channel_id, submitted_at, done_at, created_at, updated_at)
SELECT :w, c.id, c.phone, c.carrier, c.province, :campaign, 'marketing',
       '【星河商城】双11会员专享满300减50，点击 https://s.echelon.cn/Ab3xK9Z 拒收请回复R',
       md5(c.id::text), 1, CASE WHEN s.status = 'blocked' THEN 0 ELSE 600 END,
       s.status,
       CASE WHEN s.status = 'blocked' THEN 'opt_out' END,
       CASE WHEN s.status IN ('undelivered', 'expired') THEN 'MK:00' || (c.id % 7) END,
       CASE WHEN c.id % 2 = 0 THEN 'A' ELSE 'B' END,
       s.due, CASE WHEN s.status <> 'blocked' THEN :channel0 + c.id % 3 END,
       CASE WHEN s.status <> 'blocked' THEN s.sent END,
       CASE WHEN s.status IN ('delivered', 'undelivered', 'expired')
            THEN s.sent + make_interval(secs => 0.3 + (c.id % 97) * 0.05) END,
       s.due, s.due
FROM contacts c,
LATERAL (SELECT CASE WHEN r < 0.02 THEN 'blocked' WHEN r < 0.035 THEN 'undelivered'
                     WHEN r < 0.04 THEN 'expired' WHEN r < 0.045 THEN 'submitted'
                     ELSE 'delivered' END AS status,
                :due + make_interval(secs => (c.id % 7200)) AS sent,
                :due AS due
         FROM (SELECT random() + c.id * 0 AS r) AS x) AS s
WHERE c.workspace_id = :w
"""

FOLLOW_UPS_SQL = [
    # Links for a fifth of the delivered messages; 15% of messages clicked by people,
    # and a scanner's preview of a few more.
    """INSERT INTO links (workspace_id, code, contact_id, campaign_id, message_id, target_url,
           created_at)
       SELECT workspace_id, lpad(to_hex(id), 8, '0'), contact_id, campaign_id, id,
              'https://shop.example/sale', created_at
       FROM messages WHERE status = 'delivered' AND id % 5 = 0""",
    """INSERT INTO clicks (workspace_id, link_id, message_id, contact_id, campaign_id,
           clicked_at, human, bot_reason)
       SELECT workspace_id, id, message_id, contact_id, campaign_id,
              created_at + interval '10 minutes', message_id % 4 <> 0,
              CASE WHEN message_id % 4 = 0 THEN 'agent' END
       FROM links""",
    """INSERT INTO conversions (workspace_id, order_id, message_id, campaign_id, contact_id,
           source, amount_fen, occurred_at, created_at)
       SELECT workspace_id, 'O' || id, id, campaign_id, contact_id, 'click',
              5000 + id % 20000, done_at + interval '1 hour', done_at + interval '1 hour'
       FROM messages WHERE status = 'delivered' AND id % 33 = 0""",
    """INSERT INTO replies (workspace_id, phone, contact_id, message_id, text, action,
           received_at)
       SELECT workspace_id, phone, contact_id, id, 'TD', 'opt_out', done_at + interval '5 minutes'
       FROM messages WHERE status = 'delivered' AND id % 200 = 7""",
    """INSERT INTO complaints (workspace_id, phone, complained_at, channel, message_id,
           campaign_id, created_at)
       SELECT workspace_id, phone, done_at + make_interval(days => 1, mins => campaign_id::int),
              'ch', id, campaign_id, done_at
       FROM messages WHERE status = 'delivered' AND id % 2000 = 11""",
]


def generate(engine: Engine, size: int) -> dict[str, Any]:
    workspace, _ = create_workspace(engine, slug="bench", name="bench")
    w = workspace.id
    create_template(
        engine,
        workspace_id=w,
        name="t",
        kind="marketing",
        body="双11会员专享",
        signature="星河商城",
        actor="bench",
        now=NOW,
    )
    started = time.perf_counter()
    contacts = max(size // CAMPAIGNS, 1)
    with engine.begin() as conn:
        conn.execute(text(CONTACTS_SQL), {"w": w, "n": contacts, "now": NOW})
        channel0 = None
        for i in range(3):
            found = conn.execute(
                text(
                    "INSERT INTO channels (workspace_id, name, kind, config, carriers, created_at,"
                    " updated_at) VALUES (:w, :name, 'smpp', '{}', '[]', :now, :now) RETURNING id"
                ),
                {"w": w, "name": f"通道{i + 1}", "now": NOW},
            ).scalar_one()
            channel0 = channel0 or found
    with engine.begin() as conn:
        indexes = _drop_indexes(conn, "messages")
    for i in range(CAMPAIGNS):
        campaign = create_campaign(
            engine,
            workspace_id=w,
            name=f"活动{i + 1}",
            template="t",
            audience={"kind": "all"},
            send_at=None,
            ends_at=None,
            throttle_per_second=None,
            budget_yuan=None,
            now=NOW,
        )
        due = NOW.replace(hour=2) if i == CAMPAIGNS - 1 else NOW.replace(day=1, hour=2)
        with engine.begin() as conn:
            # A bulk load, not the thing measured: foreign keys are not re-checked.
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(
                text(MESSAGES_SQL),
                {"w": w, "campaign": campaign.id, "channel0": channel0, "due": due},
            )
    with engine.begin() as conn:
        for definition in indexes:
            conn.execute(text(definition))
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        for statement in FOLLOW_UPS_SQL:
            conn.execute(text(statement))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
        messages = conn.execute(text("SELECT count(*) FROM messages")).scalar_one()
    return {"workspace": w, "messages": messages, "load_s": round(time.perf_counter() - started)}


def _drop_indexes(conn: Connection, table: str) -> list[str]:
    """Drop the indexes of ``table`` that back no constraint (rebuilt after the load);
    their SQL."""
    found = conn.execute(
        text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :t"
            " AND indexname NOT IN (SELECT conname FROM pg_constraint)"
        ),
        {"t": table},
    ).all()
    for name, _ in found:
        conn.execute(text(f'DROP INDEX "{name}"'))
    return [definition for _, definition in found]


def timed(call: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return round(time.perf_counter() - started, 3), result


def measure(url: str, size: int, *, existing: bool = False) -> dict[str, Any]:
    engine = create_db_engine(url)
    if existing:
        with engine.begin() as conn:
            # Start cold: no kept scans from an earlier run.
            conn.execute(text("DELETE FROM report_snapshots"))
            count = conn.execute(text("SELECT count(*) FROM messages")).scalar_one()
        loaded = {"workspace": 1, "messages": count, "load_s": 0}
    else:
        upgrade(engine)
        loaded = generate(engine, size)
    w = loaded["workspace"]
    figures: dict[str, Any] = {"messages": loaded["messages"], "load_s": loaded["load_s"]}
    for by in (None, "variant", "channel", "carrier", "province", "hour"):
        # First the scan of the outbox, then the report as viewed again (its scan kept).
        name = by or "total"
        figures[f"report_{name}_cold_s"], report = timed(
            lambda by=by: campaign_report(engine, workspace_id=w, campaign=REPORTED, by=by)
        )
        figures[f"report_{name}_s"], report = timed(
            lambda by=by: campaign_report(engine, workspace_id=w, campaign=REPORTED, by=by)
        )
        if by is None:
            figures["campaign_messages"] = report.total.planned
            figures["delivery_rate"] = round(report.total.delivery_rate or 0, 4)
            figures["click_rate"] = round(report.total.click_rate or 0, 4)
    figures["dashboard_s"], _ = timed(lambda: dashboard(engine, workspace_id=w, now=NOW))
    figures["channel_health_s"], _ = timed(lambda: channel_health(engine, workspace_id=w, now=NOW))
    # The target: the campaign's report, first viewed, under 2 s. Stricter, and
    # printed beside it: every grouping's first view under 2 s too.
    figures["target_met"] = figures["report_total_cold_s"] < 2
    figures["every_grouping_under_2s"] = all(
        v < 2 for k, v in figures.items() if k.startswith("report_")
    )
    engine.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=10_000_000)
    parser.add_argument("--postgres", default=POSTGRES)
    parser.add_argument(
        "--keep", metavar="NAME", help="load into database NAME on that server and keep it"
    )
    parser.add_argument(
        "--existing", metavar="URL", help="measure a database an earlier --keep run loaded"
    )
    args = parser.parse_args()
    if args.existing:
        print(f"postgresql {measure(args.existing, args.size, existing=True)}", flush=True)
        return
    if args.keep:
        admin = create_db_engine(args.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{args.keep}"'))
        admin.dispose()
        url = make_url(args.postgres).set(database=args.keep).render_as_string(False)
        print(f"postgresql {measure(url, args.size)}", flush=True)
        return
    with scratch_postgres(args.postgres) as url:
        print(f"postgresql {measure(url, args.size)}", flush=True)


if __name__ == "__main__":
    main()
