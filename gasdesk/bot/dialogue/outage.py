"""停气/停暖 questions ("怎么停暖了", "为什么停气了", "今天停气吗"): the published notices for the resident's
address — the linked customer's homes (down to the building and the imported 户号 lists), or the area the
resident names — else that no notice covers it, with the way on to the self-check."""

from __future__ import annotations

import re

from gasdesk.bot.base import BotContext, BotReply
from gasdesk.bot.dialogue.common import area_in, contact_customer, district_in
from gasdesk.bot.dialogue.flow import Flow, Turn, option, reply
from gasdesk.customers.addresses import parse_free_address
from gasdesk.outages.models import OutageNotice
from gasdesk.outages.service import describe, notices_for_customer, outages_affecting

HEATING_RE = re.compile(r"暖|供热|热力")
GAS_RE = re.compile(r"气")


def kind_in(text: str) -> str | None:
    """gas / heating as the resident asks about it; None when the message says neither."""
    if HEATING_RE.search(text):
        return "heating"
    if GAS_RE.search(text):
        return "gas"
    return None


def notices_text(found: list[OutageNotice]) -> str:
    """The notices as the bot says them."""
    return "\n".join(f"{i}. {describe(o)}" for i, o in enumerate(found, 1)) if len(found) > 1 else describe(found[0])


def _advice(kind: str | None) -> str:
    if kind == "heating":
        return "停暖期间请关好门窗注意保暖，恢复供暖后如暖气仍不热可以告诉我。"
    return "停气期间请关闭灶具开关和表前阀；恢复供气后先开窗通风再用气，如仍无气可以告诉我。"


class OutageQueryFlow(Flow):
    name = "outage_query"
    intent = "outage_query"
    title = "停气停暖查询"
    related = frozenset({"no_gas", "heating_not_warm"})
    answer_slots = ("address",)

    def expects(self, turn: Turn) -> bool:
        return super().expects(turn) or (self.asking == "area" and district_in(turn.text) is not None)

    async def step(self, ctx: BotContext, turn: Turn) -> BotReply:
        if "kind" not in self.slots:
            self.slots["kind"] = kind_in(turn.text) or ""
        kind = self.slots["kind"] or None
        label = {"gas": "停气", "heating": "停暖"}.get(kind or "", "停气/停暖")
        customer = await contact_customer(ctx)
        if customer is not None and self.asking != "area":
            found = await notices_for_customer(ctx.session, customer.id, kind=kind)
            where = "您家"
        else:
            area = area_in(turn.text, turn.understanding.slots)
            if not area.district and not area.community:
                if self.asking == "area":
                    if turn.choice == "skip":
                        self.finish(ctx)
                        return reply("好的。计划停气/停暖会提前在小区公告栏、微信公众号和短信中通知，如有需要随时问我。")
                    return self.reprompt("没能识别地址，请输入所在的区和小区，例如：和平区幸福里小区。",
                                         quick=[option("不查了", "skip")])
                self.asking = "area"
                return reply(f"我帮您查一下有没有{label}公告。请问您家在哪个区、哪个小区？（例如：和平区幸福里小区3号楼）",
                             quick=[option("不查了", "skip")])
            parts = parse_free_address(area.address_text or turn.text)
            found = await outages_affecting(ctx.session, district=area.district, community=area.community,
                                            building=parts.building if parts else None, kind=kind)
            where = (area.district or "") + (area.community or "")
        self.finish(ctx)
        if found:
            return reply(f"查到{where}所在区域的{label}公告：\n{notices_text(found)}", _advice(found[0].kind),
                         intent=self.intent)
        more = option("家里没气，帮我排查", "家里没气了") if kind != "heating" else option("暖气不热，帮我排查", "暖气不热")
        return reply(f"目前没有查到{where}所在区域的{label}公告。如果家里突然没气或暖气不热，我可以帮您排查。",
                     quick=[more, {"label": "转人工", "action": "handoff"}], intent=self.intent)
