"""The built-in sparring scenarios (installed by the demo seed and ``service.do_install_default_scenarios``):
an angry resident with no gas after topping up (充值后没气), a gas leak report (闻到燃气味) and an appointment
change (改约). Each is a ``sparring.ScenarioScript``; the step patterns read the bot's normalised text."""

from __future__ import annotations

from typing import Any

# Asking for the address or the account: shared by the scenarios.
ASK_ADDRESS = r"(地址|住址|住在|住哪|家在哪|哪个小区|哪个区|几号楼|几栋|门牌|户号|用户号|用户编号|卡号)"
APOLOGY_PHRASES = [
    "抱歉",
    "对不起",
    "不好意思",
    "歉意",
    "理解您",
    "给您添麻烦",
    "让您久等",
    "别着急",
    "不要着急",
    "请您放心",
    "别生气",
]

NO_GAS: dict[str, Any] = {
    "persona": "刘阿姨，六十多岁，家里是IC卡表。昨天在手机上充值了200元，今天早上做饭发现没气，很生气。",
    "brief": "居民来电投诉：充值后没气。先安抚情绪，核实地址或户号，指导插卡把充值写入燃气表，仍不行就报修派师傅上门。",
    "intent": "no_gas",
    "opening": "你们怎么回事啊！我昨天在手机上充了200块钱，今天早上一点气都没有，饭都做不了，气死我了！",
    "steps": [
        {
            "id": "apologise",
            "label": "安抚致歉",
            "weight": 20,
            "phrases": APOLOGY_PHRASES,
            "patterns": [r"(您|你)先?别(急|着急|生气)"],
        },
        {"id": "ask_address", "label": "核实地址或户号", "weight": 20, "patterns": [ASK_ADDRESS]},
        {
            "id": "card_guidance",
            "label": "指导插卡写入充值",
            "weight": 30,
            "phrases": ["插卡", "插一下卡", "读卡", "写卡", "圈存"],
            "patterns": [r"卡.{0,8}(插|刷|读|放)", r"(插|刷).{0,6}卡"],
            "slots": ["meter_topic=插卡"],
        },
        {
            "id": "offer_repair",
            "label": "提供报修或上门服务",
            "weight": 30,
            "phrases": ["报修", "工单", "派师傅", "安排师傅", "维修人员", "上门"],
            "patterns": [r"(派|安排|让).{0,6}(师傅|人员|工作人员|同事).{0,6}(上门|过去|去|来)"],
            "intents": ["appointment_book"],
        },
    ],
    "replies": [
        {
            "id": "calmed",
            "on": "apologise",
            "text": "……行吧，我也不是冲你。那现在怎么办？表上显示的还是原来的数。",
        },
        {
            "id": "address_angry",
            "on": "ask_address",
            "unless": ["apologise"],
            "text": "问地址有什么用！幸福里小区3号楼2单元501，户号2103345678，你们赶紧给我解决！",
        },
        {"id": "address", "on": "ask_address", "text": "我家是幸福里小区3号楼2单元501，户号2103345678。"},
        {
            "id": "card_done",
            "on": "card_guidance",
            "text": "我把卡拔下来重新插了一次，表上的数字变了，可灶还是点不着火，是不是哪里坏了？",
        },
        {
            "id": "repair_no_address",
            "on": "offer_repair",
            "unless": ["ask_address"],
            "text": "派人来？你们连我家在哪都没问呢。",
        },
        {"id": "repair_ok", "on": "offer_repair", "text": "那就麻烦师傅过来看看吧。"},
    ],
    "nudges": [
        {
            "id": "nudge_apology",
            "on": "apologise",
            "text": "你倒是说句话啊！我花了钱没气用，你们就这么对待用户？",
        },
        {"id": "nudge_address", "on": "ask_address", "text": "你们能不能快点给我查一下？"},
        {"id": "nudge_card", "on": "card_guidance", "text": "钱是充了，那我现在到底要怎么弄才能有气？"},
        {"id": "nudge_repair", "on": "offer_repair", "text": "要是还不行怎么办？你们能派人来看看吗？"},
    ],
    "closing": "行，那我在家等师傅，谢谢你啊。",
    "fallback": "你说的我没太明白，我就想知道什么时候能有气用。",
}

GAS_LEAK: dict[str, Any] = {
    "persona": "王先生，四十岁，下班回家在厨房闻到很浓的燃气味，很紧张。",
    "brief": "居民报告闻到燃气味。稳住情绪，立即给出安全提示（开窗通风、不要开关电器和使用明火、关闭阀门、到室外打电话），并问清详细地址以便派抢修。",
    "intent": "gas_leak",
    "opening": "喂，我在厨房闻到一股很大的煤气味，怎么办啊？",
    "steps": [
        {
            "id": "calm",
            "label": "稳定情绪",
            "weight": 10,
            "phrases": [
                "别慌",
                "不要慌",
                "别紧张",
                "不要紧张",
                "别着急",
                "不要着急",
                "别担心",
                "冷静",
                "请放心",
            ],
        },
        {
            "id": "ventilate",
            "label": "提示开窗通风",
            "weight": 20,
            "phrases": ["开窗通风", "开窗", "打开门窗", "开门窗", "通风"],
        },
        {
            "id": "no_switches",
            "label": "提示不要开关电器、不用明火",
            "weight": 20,
            "patterns": [
                r"(不要|别|勿|禁止|千万不能|不能|切勿|避免).{0,8}(开关|电器|开灯|关灯|插头|明火|点火|打火|抽烟|吸烟)"
            ],
        },
        {
            "id": "shut_valve",
            "label": "提示关闭燃气阀门",
            "weight": 15,
            "phrases": ["关闭阀门", "关阀门", "关总阀", "表前阀"],
            "patterns": [r"(关|关闭|关掉|拧紧|关上).{0,6}阀", r"阀.{0,4}(关|拧紧)"],
        },
        {
            "id": "outdoors_call",
            "label": "提示到室外拨打电话",
            "weight": 15,
            "patterns": [
                r"(到|去|离开|出|走到).{0,6}(室外|屋外|外面|户外|楼下|楼外|门外|楼道)",
                r"(室外|屋外|户外|外面|楼下).{0,8}(打|拨|联系|报)",
            ],
        },
        {"id": "ask_address", "label": "询问详细地址", "weight": 20, "patterns": [ASK_ADDRESS]},
    ],
    "replies": [
        {"id": "calmer", "on": "calm", "text": "好，好，我尽量不慌……"},
        {"id": "windows", "on": "ventilate", "text": "窗户我都打开了，味道还是有。"},
        {"id": "switches", "on": "no_switches", "text": "明白，我不碰开关，灯也不开。"},
        {"id": "valve", "on": "shut_valve", "text": "表前那个阀门我拧上了。"},
        {"id": "outside", "on": "outdoors_call", "text": "我现在到楼下了，在单元门口。"},
        {"id": "address", "on": "ask_address", "text": "我家在和平区向阳花园5号楼1单元302。"},
    ],
    "nudges": [
        {"id": "nudge_ventilate", "on": "ventilate", "text": "味道很大，我现在该做什么？"},
        {"id": "nudge_switches", "on": "no_switches", "text": "屋里太黑了，我要不要开灯看看是哪里漏的？"},
        {"id": "nudge_valve", "on": "shut_valve", "text": "还要做什么吗？那个燃气阀门要不要动？"},
        {"id": "nudge_outside", "on": "outdoors_call", "text": "我是不是就在屋里等着？"},
        {"id": "nudge_address", "on": "ask_address", "text": "你们什么时候能来人？"},
        {"id": "nudge_calm", "on": "calm", "text": "我好害怕，会不会爆炸啊？"},
    ],
    "closing": "好的，我在楼下等抢修师傅，谢谢你。",
    "fallback": "啊？我现在脑子有点乱，你说我该怎么办？",
}

RESCHEDULE: dict[str, Any] = {
    "persona": "陈女士，三十多岁上班族，约了明天上午的入户安检，临时要加班。",
    "brief": "居民要求改约安检时间。表示理解，核实预约信息，提供可选的新时间，并确认改约结果。",
    "intent": "appointment_book",
    "opening": "你好，我约了明天上午的安检，可是明天临时要加班，能不能改个时间？",
    "steps": [
        {
            "id": "acknowledge",
            "label": "表示理解、答应办理",
            "weight": 15,
            "phrases": [
                "理解",
                "没问题",
                "当然可以",
                "可以改",
                "可以调整",
                "帮您改",
                "帮您调整",
                "不好意思",
                "抱歉",
            ],
        },
        {
            "id": "verify",
            "label": "核实预约信息",
            "weight": 25,
            "patterns": [ASK_ADDRESS, r"(手机号|电话|预约号|预约单号|工单号|预约人|姓名)"],
        },
        {
            "id": "offer_time",
            "label": "提供可选的新时间",
            "weight": 30,
            "phrases": ["哪天方便", "什么时候方便", "几点方便", "哪天有空", "时间段", "改到"],
            "slots": ["date", "time"],
        },
        {
            "id": "confirm",
            "label": "确认改约结果",
            "weight": 30,
            "patterns": [
                r"(已|已经|给您|帮您|为您).{0,6}(改|调|约|安排|预约)(好|到|成|了)",
                r"改约成功|修改成功|调整好了|约好了|改好了",
            ],
        },
    ],
    "replies": [
        {"id": "thanks", "on": "acknowledge", "text": "谢谢，太麻烦你们了。"},
        {
            "id": "details",
            "on": "verify",
            "text": "户号是2103345678，电话13800001234，幸福里小区3号楼2单元501。",
        },
        {
            "id": "time_unverified",
            "on": "offer_time",
            "unless": ["verify"],
            "text": "后天下午两点以后都行……你们不用核对一下我的信息吗？",
        },
        {"id": "time", "on": "offer_time", "text": "后天下午两点以后我都在家。"},
        {
            "id": "confirm_early",
            "on": "confirm",
            "unless": ["offer_time"],
            "text": "改到哪天了？我还没说我什么时候有空呢。",
        },
        {"id": "confirmed", "on": "confirm", "text": "好的，那就这么定了。"},
    ],
    "nudges": [
        {"id": "nudge_ack", "on": "acknowledge", "text": "能改吗？不能改我就只能请假了。"},
        {"id": "nudge_verify", "on": "verify", "text": "需要我提供什么信息吗？"},
        {"id": "nudge_time", "on": "offer_time", "text": "那可以改到什么时候？"},
        {"id": "nudge_confirm", "on": "confirm", "text": "那就这么定了吗？改好了吗？"},
    ],
    "closing": "好的，那就后天下午见，谢谢！",
    "fallback": "嗯？我就是想把明天的安检改个时间。",
}

DEFAULT_SCENARIOS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("no_gas_after_topup", "充值后没气（情绪激动）", NO_GAS),
    ("gas_leak_report", "闻到燃气味", GAS_LEAK),
    ("appointment_change", "改约上门安检", RESCHEDULE),
)
