"""Meter guidance: which meter (slots, else the verified customer's account, else ask) × which topic (电池 /
插卡 / 余量 / 自闭阀) → step-by-step instructions."""

from __future__ import annotations

from gasdesk.bot.base import BotContext, BotMessage, BotReply
from gasdesk.bot.dialogue.common import contact_customer
from gasdesk.bot.dialogue.flow import Flow, Turn, option, reply

TYPES = ("IC卡表", "物联网智能表", "机械表")
TOPICS = ("电池", "插卡", "余量", "自闭阀")
TYPE_OF_ACCOUNT = {"ic_card": "IC卡表", "smart": "物联网智能表", "mechanical": "机械表"}
TOPIC_LABELS = {"电池": "换电池/电量低", "插卡": "插卡没反应/写卡", "余量": "查看余量/读数", "自闭阀": "自闭阀关了怎么复位"}
FOLLOW_UP_TEXT = {"电池": "{t}怎么换电池", "插卡": "{t}插卡没反应", "余量": "{t}怎么看余量", "自闭阀": "{t}自闭阀怎么复位"}

_RESET_VALVE = [
    "先关闭家中所有燃气灶具、热水器的开关；",
    "闻一闻厨房有没有燃气味：如果有，不要复位，立即开窗通风、关闭表前阀，到室外拨打 96777 报修；",
    "确认没有燃气味后，找到表后（或灶前）管道上的自闭阀，将复位提杆/按钮轻轻向上提起（部分型号为按下）直到卡住，"
    "保持 2–3 秒再松手；",
    "打开灶具点火试用，火焰正常即复位成功；",
    "自闭阀会在压力过高、过低或流量异常时自动关闭。如果复位后又很快关闭，可能存在管道压力异常或漏气，"
    "请不要反复复位，直接报修。",
]

GUIDES: dict[tuple[str, str], list[str]] = {
    ("IC卡表", "电池"): [
        "表上显示“电池欠压”“请换电池”或“Lo/bAt”等提示，或表阀自动关闭不出气时，需要更换电池；",
        "关闭灶具开关和表前阀；",
        "找到表正面下方或侧面的电池盒，按箭头方向推开盒盖（个别型号需用螺丝刀拧开）；",
        "取出旧电池，按盒内标注的正负极装入同型号新电池（多数为 2 节 5 号碱性电池，以盒内标注为准，不要用充电电池）；",
        "盖好电池盒，插一下燃气卡让表重新开阀，屏幕显示余量即正常；",
        "打开表前阀，点火试用。换电池不会丢失表内余量。",
    ],
    ("IC卡表", "插卡"): [
        "按表上箭头方向插卡，芯片一面朝向正确（通常芯片朝上、朝里），插到底停留 3–5 秒，听到“嘀”声或屏幕亮起后再拔出；",
        "插卡完全没反应，多半是电池没电：先更换电池再插卡；",
        "用干净的软布或橡皮轻擦卡片芯片，去掉油污后重试；",
        "屏幕提示“非本表卡/卡错误”：请确认是本户的燃气卡；在手机上购气后提示“未写卡”的，需要在营业厅或自助终端"
        "把购气量写入卡中（圈存）后再插表；",
        "仍然无法识别，可能是卡或读卡器损坏：请户主携带身份证和燃气卡到营业厅检测/补卡，或预约上门维修。",
    ],
    ("IC卡表", "余量"): [
        "插一下燃气卡或按表上的显示键，屏幕会依次显示剩余气量（m³）或剩余金额、累计用气量；",
        "剩余气量低于报警值（一般 5 m³ 左右）时表会提示“请购气”，降到零会自动关阀停气；",
        "购气后一定要把卡插入燃气表，气量写入表内后才能使用；",
        "购气记录可在微信公众号或营业厅查询。",
    ],
    ("IC卡表", "自闭阀"): [
        "IC卡表本身在余量为零、电池没电或检测到异常时会关闭表内阀门：先插一下燃气卡，余量充足、电池正常时表会重新开阀；",
        *_RESET_VALVE,
    ],
    ("物联网智能表", "电池"): [
        "多数物联网智能表使用密封锂电池，设计寿命 6–10 年，居民不需要也不要自行拆开更换；",
        "如果表上提示电量低，或在公众号收到低电量提醒，请预约上门维修，工作人员会免费检测更换；",
        "少数型号有可打开的电池盒（盒盖上标有电池型号），这类可以像 IC卡表一样：关闭表前阀 → 打开电池盒 → "
        "按正负极换上同型号电池 → 盖好 → 按一下表上按键唤醒并开阀。",
    ],
    ("物联网智能表", "插卡"): [
        "物联网智能表一般不需要插卡：在微信公众号、支付宝或营业厅缴费后，金额会通过网络自动下发到表里；",
        "到账通常需要几分钟到几小时（取决于表的上报周期），可以按一下表上按键唤醒表，加快通信；",
        "缴费后超过 24 小时表内金额仍没有变化，请保留缴费记录并联系客服核查；",
        "如果您的表带有插卡口（IC卡+物联网双模表），插卡方法与 IC卡表相同。",
    ],
    ("物联网智能表", "余量"): [
        "按一下表上的按键唤醒屏幕，可查看剩余金额（或气量）和累计用气量；",
        "也可以在微信公众号“我的账户”里查看，数据以表最近一次上报为准，可能有几个小时延迟；",
        "余额不足时会收到提醒，欠费后表会远程关阀，缴费后一般自动开阀，部分型号需要长按表上按键约 3 秒开阀。",
    ],
    ("物联网智能表", "自闭阀"): [
        "智能表内的阀门可能因欠费、长时间未用气或检测到异常大流量而关闭：请先确认账户没有欠费，"
        "缴清后长按表上按键约 3 秒开阀；",
        *_RESET_VALVE,
    ],
    ("机械表", "电池"): [
        "机械表靠燃气流动带动计数器，不需要电池；",
        "如果您家的燃气表有显示屏或电池盒，那是 IC卡表或物联网智能表，请选择对应的表型查看换电池方法。",
    ],
    ("机械表", "插卡"): [
        "机械表没有插卡功能，属于“先用气后缴费”：抄表员按周期抄表，您按账单缴费即可；",
        "可通过微信公众号、支付宝生活缴费、银行代扣或营业厅缴费，缴费后不需要对表做任何操作。",
    ],
    ("机械表", "余量"): [
        "机械表不显示余量，只显示累计用气量（m³）；",
        "读数方法：从左往右读黑色数字为整数立方米，红色数字或小数点后的为小数，一般只记整数；",
        "本期用气量 = 本次读数 − 上次读数，可以拍照记录读数，与账单核对；",
        "如果不用气时末位数字仍在转动，可能有漏气，请关闭表前阀并报修。",
    ],
    ("机械表", "自闭阀"): _RESET_VALVE,
}


# Step-by-step pictures served with the chat widget (gasdesk/channels/webchat/static/guides/).
GUIDE_IMAGES = {"电池": "/static/webchat/guides/battery.svg", "插卡": "/static/webchat/guides/card.svg",
                "余量": "/static/webchat/guides/remaining.svg", "自闭阀": "/static/webchat/guides/valve.svg"}


def guide_text(meter_type: str, topic: str) -> str:
    steps = GUIDES[(meter_type, topic)]
    return f"【{meter_type} · {TOPIC_LABELS[topic]}】\n" + "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1))


class MeterGuidanceFlow(Flow):
    name = "meter_guidance"
    intent = "meter_guidance"
    title = "燃气表使用指导"
    answer_slots = ("meter_type", "meter_topic")

    async def step(self, ctx: BotContext, turn: Turn) -> BotReply:
        if self.asking == "meter_type" and turn.choice in TYPES:
            self.slots["meter_type"] = turn.choice
        if self.asking == "meter_topic" and turn.choice in TOPICS:
            self.slots["meter_topic"] = turn.choice
        changed = self.absorb(turn.understanding, ("meter_type", "meter_topic"))
        if "meter_type" not in self.slots:
            customer = await contact_customer(ctx)
            for account in customer.accounts if customer else []:
                if account.meter_type in TYPE_OF_ACCOUNT:
                    self.slots["meter_type"] = TYPE_OF_ACCOUNT[account.meter_type]
                    self.slots["from_account"] = "1"
                    break
        meter_type = self.slots.get("meter_type")
        if meter_type not in TYPES:
            quick = [option(t) for t in TYPES]
            if self.asking == "meter_type" and not changed:
                return self.reprompt("请点击选择您家的燃气表类型（不确定的话：需要插卡充值的是 IC卡表，手机缴费自动到账的是"
                                     "物联网智能表，只有转动数字、按账单缴费的是机械表）：", quick=quick)
            self.asking = "meter_type"
            return reply("请问您家用的是哪种燃气表？", quick=quick)
        topic = self.slots.get("meter_topic")
        if topic not in TOPICS:
            quick = [option(TOPIC_LABELS[t], t) for t in TOPICS]
            if self.asking == "meter_topic" and not changed:
                return self.reprompt("请点击选择您遇到的问题：", quick=quick)
            self.asking = "meter_topic"
            lead = f"您家登记的是{meter_type}。" if self.slots.get("from_account") else f"好的，{meter_type}。"
            return reply(f"{lead}请问遇到了什么问题？", quick=quick)
        self.finish(ctx)
        others = [{"label": TOPIC_LABELS[t], "text": FOLLOW_UP_TEXT[t].format(t=meter_type)} for t in TOPICS if t != topic]
        guide = BotMessage(guide_text(meter_type, topic), card={
            "kind": "guide", "image": GUIDE_IMAGES[topic], "alt": f"{meter_type}{TOPIC_LABELS[topic]}示意图"})
        return BotReply([guide, BotMessage("按以上步骤仍未解决，可以预约上门维修。",
                                           quick_replies=[*others, {"label": "预约维修", "text": "我要预约维修"}])],
                        intent=self.intent, slots={"meter_type": meter_type, "meter_topic": topic})
