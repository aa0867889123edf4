"""A real campaign plan (``start_campaign``) with ``{{ link(...) }}`` and ``{{ coupon }}``.

Each recipient gets their own short link and coupon, stored and tied to their message;
the texts were rendered once with placeholders as long as the real ones, in the
planning child, and personalised as each page was written.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import Engine, select
from tracking_support import NOW, add_campaign, open_shop

from echelon.campaigns.service import start_campaign
from echelon.db.outbox import messages
from echelon.db.tracking import coupons, links
from echelon.workspaces.service import Workspace


def test_a_started_campaign_sends_each_recipient_their_own_link_and_coupon(
    engine: Engine, workspace: Workspace, tmp_path: Path
) -> None:
    open_shop(engine, workspace, tmp_path)
    campaign_id = add_campaign(engine, workspace)
    summary = start_campaign(engine, workspace_id=workspace.id, name="双11", now=NOW)
    assert summary["blocked"] == {} and summary["planned"] == 4
    with engine.connect() as conn:
        texts = list(conn.execute(select(messages.c.text)).scalars())
        issued = conn.execute(
            select(links.c.code, links.c.message_id).where(links.c.campaign_id == campaign_id)
        ).all()
        coupon_count = len(
            conn.execute(select(coupons.c.id).where(coupons.c.campaign_id == campaign_id)).all()
        )
    codes = [re.search(r"https://s\.echelon\.cn/([A-Za-z0-9]{7})", t) for t in texts]
    assert all(codes) and len({c.group(1) for c in codes if c}) == 4
    assert len(issued) == 4 and all(message_id is not None for _, message_id in issued)
    assert coupon_count == 4
