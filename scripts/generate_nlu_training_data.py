"""Regenerate ``train.jsonl`` = hand-curated ``seed.jsonl`` + pattern-generated paraphrases.

Run: ``.venv/bin/python scripts/generate_nlu_training_data.py`` (deterministic: fixed seed, sorted output
per intent, so the file only changes when this script or the seed changes). A build script for data that
ships in the package, not runtime code: nothing in ``gasdesk`` imports it, and
``tests/bot/test_nlu_training_data.py`` checks that the shipped ``train.jsonl`` is what it writes.

Why: the seed examples are short and clean (about 14 characters on average), while residents write
long stories, dialect (咋整/啥/嘎哈/俺), fillers (那个/就是/麻烦问一下), homophone typos (然气/户好/
暖器), emoji and English words. Each intent below has *paraphrase families*: core phrasings written
from how people talk to a gas/heating hotline, with slots filled from shared vocabularies. Every core
phrase is then wrapped with the *same* distribution of fillers, story prefixes, closings, noise and
typos for all intents, so wrappers carry no intent signal and the classifier learns the core.

None of these sentences is taken or paraphrased from the evaluation sets (dev-eval, heldout,
heldout2); keep it that way when editing.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent.parent / "gasdesk" / "bot" / "nlu" / "data"
SEED_PATH = DATA_DIR / "seed.jsonl"
TRAIN_PATH = DATA_DIR / "train.jsonl"
PER_INTENT = 160  # generated examples per intent (on top of the seed)
RANDOM_SEED = 20241127

# ----------------------------------------------------------------------------- shared vocabularies
V = {
    "gas": ["燃气", "煤气", "天然气", "气"],
    "fee": ["燃气费", "煤气费", "气费", "暖气费", "采暖费", "取暖费"],
    "svc": [
        "安检",
        "维修",
        "开栓",
        "通气",
        "改管",
        "移表",
        "改线",
        "报警器安装",
        "阀管改造",
        "换自闭阀",
        "上门服务",
    ],
    "staff": [
        "师傅",
        "安检员",
        "维修师傅",
        "客服",
        "营业厅的工作人员",
        "抢修的师傅",
        "小伙子",
        "那个姑娘",
        "你们的人",
    ],
    "appl": ["燃气灶", "灶", "灶具", "热水器", "壁挂炉", "灶台"],
    "meter": ["燃气表", "气表", "表", "卡表", "智能表", "IC卡表", "物联网表", "机械表"],
    "room": ["卧室", "客厅", "屋里", "家里", "北屋", "小孩屋"],
    "when": ["明天", "后天", "周六", "这周末", "下周一", "月底", "过两天", "今天下午", "明早"],
    "past": ["昨天", "前天", "前两天", "上周", "上礼拜", "半个月前", "三天前", "月初"],
    "chan": ["微信", "支付宝", "手机银行", "云闪付", "公众号", "小程序", "银行柜台", "营业厅", "APP"],
    "area": ["我们小区", "我们这片", "咱们这栋楼", "整个单元", "我们街道", "我们村", "这一片"],
    "place": ["高新区", "开发区", "老城区", "东边", "火车站附近", "南湖那边", "新区", "县城"],
    "biz": ["过户", "开户", "销户", "更名", "报停", "注销", "改户名", "复供", "补卡"],
}

# ----------------------------------------------------------------------------- paraphrase families
FAMILIES: dict[str, list[str]] = {
    "greeting": [
        "在吗",
        "在么",
        "在不在",
        "有人吗",
        "喂",
        "喂喂",
        "你好",
        "您好",
        "哈喽",
        "嗨",
        "亲",
        "早上好",
        "中午好",
        "客服在吗",
        "有人在线吗",
        "能回个话吗",
        "有人回复吗",
        "小姐姐在吗",
        "我想咨询点事",
        "有个问题想问问",
        "哈啰哈啰",
        "老铁在吗",
        "大姐在不",
        "人都去哪了",
        "咋没人说话呢",
        "有没有客服在",
        "值班的在不",
    ],
    "goodbye": [
        "好的谢谢再见",
        "没事了拜拜",
        "行，就这样吧",
        "知道了谢谢，没别的了",
        "好嘞，挂了啊",
        "好的谢谢",
        "谢谢",
        "谢了",
        "多谢",
        "感谢",
        "拜拜",
        "再见",
        "好嘞",
        "行了没事了",
        "知道了谢谢",
        "不打扰了",
        "解决了谢谢",
        "那我挂了",
        "辛苦了再见",
        "谢谢你们啊",
        "行吧我知道了",
        "那我去办了，谢谢",
        "嗯嗯好的",
        "收到，谢谢",
        "了解了",
        "谢谢答复",
        "好滴",
    ],
    "human_agent": [
        "转人工",
        "人工客服",
        "找人工",
        "我要人工",
        "转接人工",
        "给我转人工",
        "叫个真人来",
        "不跟机器人聊了",
        "你是机器人吧，换人",
        "有没有人工服务",
        "要跟客服人员说",
        "能不能让坐席接一下",
        "真人客服",
        "接线员呢",
        "能打电话给我吗，我要找人工",
        "你说的不对，找个人来",
        "我要和真人对话",
        "把我转给值班的人",
        "要人工处理",
        "跟你说不明白，让你们的人来",
        "机器回复没用，要人",
    ],
    "appointment_book": [
        "派个人来看看",
        "叫个师傅上门弄一下",
        "能派人来吗",
        "找人来修一下{appl}",
        "{svc}约{when}",
        "那就约{when}吧",
        "再帮我约个{svc}",
        "上门给看一下行不",
        "来人给看看吧，我自己弄不了",
        "想约{svc}",
        "预约{svc}",
        "能约个{svc}吗",
        "{when}能来{svc}吗",
        "怎么预约{svc}",
        "帮我登记个{svc}",
        "我要报修，{appl}坏了",
        "{appl}坏了，派人来修",
        "{appl}出毛病了，能上门修吗",
        "{appl}点不着了，应该是坏了，来个人修修",
        "来个师傅给看看{appl}",
        "想请师傅{when}上门{svc}",
        "房子交房了，约通气",
        "想把{meter}挪个位置",
        "{appl}总熄火，派人来看一下",
        "约师傅{when}来家里",
        "麻烦安排人{when}上门{svc}",
        "给我家排个{svc}",
        "报个修",
        "申请上门{svc}",
        "我想申请{svc}，{when}家里有人",
        "{appl}有问题，需要上门维修",
        "{appl}火不好使了，叫人来修",
        "报修{appl}",
        "登记报修",
        "要约{svc}，留个电话",
    ],
    "appointment_progress": [
        "我{past}报的修，啥时候派人来",
        "师傅大概几点上门",
        "约的{svc}有具体时间了吗",
        "能告诉我上门师傅的电话吗",
        "登记过{svc}了，师傅什么时候到",
        "报了修一直没人来",
        "上门的人出发了没",
        "{past}预约了{svc}，到现在没动静",
        "{svc}的事办到哪一步",
        "之前挂的{svc}单子怎么样了",
        "约好的{svc}还算数吗",
        "给我排的是哪天",
        "派的是哪位师傅",
        "上门时间定了没",
        "我的报修有人管吗",
        "在家等着呢，人什么时候过来",
        "维修单号查询",
        "已经约好了，来之前会打电话吗",
        "报修单进度查一下",
        "约的{svc}排到哪天了",
        "怎么还没给我打电话安排{svc}",
        "说好{when}来{svc}，确定吗",
        "已经报修了，啥时候能修",
        "派单了没",
        "{past}就报了，人还没到",
        "我约的人到哪了",
        "{svc}的单子谁负责的，进展怎么样",
        "报过的修什么时候处理",
    ],
    "appointment_cancel": [
        "预约不要了",
        "{svc}不弄了",
        "{svc}不用来了",
        "不约了，算了",
        "那个上门的不要了",
        "单子撤销吧",
        "已经修好了，别派人了",
        "我约的{svc}取消一下",
        "{when}那个别来了",
        "不需要上门了，取消",
        "家里有事，{svc}先取消",
        "把我约的那个退掉",
        "{svc}不约了",
        "把{svc}的预约取消",
        "{when}的{svc}取消掉",
        "师傅别来了，取消",
        "{svc}能改期吗",
        "时间换一下，改{when}",
        "往后推推",
        "推迟几天",
        "预约的时间不合适，想改",
        "{svc}先不做了",
        "报修撤了吧，已经好了",
        "能不能改天再来",
        "那个单子作废",
        "不装了，取消",
        "换到{when}行不行",
    ],
    "balance_query": [
        "查余额",
        "卡里还有钱吗",
        "帮我查查账上余额",
        "余额多少",
        "我家{fee}欠不欠",
        "看看我账户余额",
        "欠费金额是多少",
        "我交的钱到账了吗，余额多少",
        "查下我家{fee}的账",
    ],
    "account_number_query": [
        "怎么查户号",
        "户号找不到了",
        "能帮我查户号吗",
        "户号几位数",
        "户号丢了咋办",
        "缴费单没了，户号不记得",
        "我家燃气编号多少",
        "交费的时候户号填啥",
    ],
    "branch_info": [
        "营业厅在哪",
        "营业厅几点下班",
        "营业厅周末上班吗",
        "{place}的网点在哪",
        "营业厅地址发一下",
        "节假日营业厅开吗",
        "哪个营业厅近",
        "营业厅怎么走",
        "你们办公地点在哪",
        "网点晚上开到几点",
        "办业务去哪个厅",
    ],
    "payment_howto": [
        "钱怎么给你们",
        "去哪交钱",
        "卡表咋充钱",
        "卡里没钱了去哪充",
        "在哪买气",
        "手机上能充{fee}吗",
        "交费的地方在哪",
        "网上交{fee}的入口在哪",
        "怎么往卡里充钱",
        "不会用手机交，还能去哪交",
        "{chan}怎么交费",
        "能银行卡代扣吗",
        "能不能先用后付",
        "发票怎么开",
        "用银行卡绑定交费行吗",
        "能不能预存{fee}",
    ],
    "no_gas": [
        "卡表里有钱就是不来气",
        "插卡了还是没气",
        "买了气插上卡也不出气",
        "卡里有余额但点不着",
        "表里有钱为啥没气",
        "充了钱还是没气",
        "智能表有钱也断气了",
        "家里没气",
        "突然没气了",
        "{appl}点不着",
        "火一点就灭",
        "火苗特别小",
        "{appl}不出气",
        "卡里有钱但没气",
        "就我家没气，邻居有",
        "做饭做一半没气了",
        "气断了",
        "不来气",
        "{gas}没了",
        "拧开没反应，没火",
        "我家断气了，钱是够的",
        "怎么我家就没气了",
        "我家没气了，是不是被停了",
        "火上不来",
    ],
    "gas_leak": [
        "闻到{gas}味",
        "厨房有怪味",
        "管子嘶嘶响",
        "报警器响了",
        "好像漏气",
        "{meter}那里在漏",
        "软管破了",
        "头晕，屋里味道大",
        "有刺鼻的味道",
        "味儿特别冲",
        "警报器在叫",
        "闻着不对劲，像{gas}",
    ],
    "outage_query": [
        "暖气什么时候来",
        "几号开始来暖",
        "今天来暖吗",
        "供暖季到几号结束",
        "暖气啥时候停",
        "什么时候开始烧暖气",
        "{area}今天停气吗",
        "停气到几点",
        "什么时候恢复供气",
        "{area}计划停暖通知",
        "{area}什么时候来气",
        "停气通知在哪看",
        "检修停气要多久",
        "抢修什么时候完",
        "{area}停暖了吗",
        "今年什么时候开始供暖",
        "{area}暖气都停了吗",
        "管网检修影响哪些小区",
        "{area}都不热了，是停暖检修吗",
    ],
    "meter_guidance": [
        "{meter}不亮了",
        "插卡没反应",
        "{meter}读数怎么看",
        "自闭阀怎么复位",
        "{meter}上的按钮怎么用",
        "{meter}屏幕显示错误代码",
        "新换的表不会用",
        "{meter}闪红灯",
        "充了值插卡后表上没变",
        "{meter}上的数字是啥意思",
        "{meter}显示请充值",
    ],
    "heating_not_warm": [
        "放过气了还是不热",
        "暖气一直温温的",
        "{room}暖气片上热下凉",
        "暖气片不烫手",
        "暖气不热",
        "暖气片凉",
        "{room}冷",
        "{room}才十几度",
        "地暖不热",
        "暖气不给力",
        "冻得不行，暖气跟没开一样",
        "回水管凉",
        "温度不达标",
        "暖气拔凉拔凉的",
        "暖气跟没有一样",
        "冻手冻脚的，暖气太凉",
        "晚上冻醒了，暖气不行",
    ],
    "complaint": [
        "收费太黑了，我要投诉",
        "乱收费，必须给说法",
        "暖气不热还收全费",
        "{fee}凭什么收这么多",
        "约好的不来，还不打招呼",
        "说好今天来又放鸽子",
        "你们这是乱收钱",
        "投诉，等了好几天没人管",
        "价格随便涨，我要反映",
        "停这么久都不通知",
        "我要投诉",
        "投诉{staff}",
        "{staff}不耐烦",
        "服务太差了",
        "{fee}多收了",
        "{fee}算错了，不合理",
        "账单不对，多扣钱了",
        "{staff}乱收费",
        "强制推销",
        "说好来没来，耽误事",
        "打电话没人接",
        "等了一天没人，什么服务",
        "施工乱挖没人管",
        "{staff}把东西弄坏了",
        "效率太低了",
        "一直拖着不处理",
        "给个说法",
        "我要找你们领导",
        "真是服了你们",
        "这服务也太烂了",
        "{fee}怎么突然涨这么多，坑人",
        "三番五次让我跑，有没有人管",
    ],
    "praise": [
        "你们师傅太给力了",
        "{staff}真靠谱",
        "必须点个赞",
        "{staff}人真好",
        "给{staff}比个心",
        "服务没得说",
        "{staff}太专业了，谢谢",
        "修得又快又好",
        "表扬{staff}",
        "{staff}服务很好",
        "好评",
        "五星好评",
        "非常满意",
        "服务真赞",
        "你们很给力",
        "效率真高，点赞",
        "抢修及时，感谢",
        "{staff}辛苦了，谢谢",
        "必须夸一下{staff}",
        "服务到位",
        "{staff}客气又细心",
        "给你们竖大拇指",
        "这次体验很好",
    ],
    "business_handling": [
        "要带什么证件",
        "能代办吗",
        "加个壁挂炉要申请吗",
        "开饭店用气怎么申请",
        "燃气能报停吗",
        "办{biz}要带啥",
        "{biz}怎么办",
        "办{biz}要本人去吗",
        "网上能办{biz}吗",
        "买了二手房要办什么手续",
        "暖气能报停吗",
        "商户怎么申请用气",
        "燃气账户怎么注销",
        "报停后怎么恢复",
        "店铺转让燃气要办啥",
        "户名改成我的要啥证件",
    ],
    "price_query": [
        "上门{svc}收费吗",
        "{svc}要钱吗",
        "{svc}收不收费",
        "开栓要交钱不",
        "维修的话要多少钱",
        "换个{meter}多少钱",
        "{fee}一平多少钱",
        "阶梯气价怎么算",
        "商业用气价格",
        "涨价了吗",
        "{svc}多少钱",
        "有没有优惠价",
        "按什么面积收暖气费",
        "{gas}单价",
        "采暖用气有没有特殊价格",
    ],
    "safety_knowledge": [
        "冬天燃气表会冻坏吗",
        "一氧化碳中毒有什么症状",
        "燃气管道上能挂东西吗",
        "报警器装在哪比较好",
        "胶管多久换一次",
        "出远门燃气要怎么处理",
        "燃气灶能放在阳台吗",
        "怎么检查漏气",
        "出门要关阀吗",
        "燃气灶旁边能放易燃物吗",
        "厨房装修有什么燃气安全要求",
        "热水器多少年要换",
        "壁挂炉要定期保养吗",
        "{meter}周围能堆杂物吗",
        "为什么要用金属软管",
        "燃气设备使用年限是多少",
        "长时间不用燃气要注意啥",
        "安检一般查哪些内容",
        "报警器多久换一次",
        "灶具能不能自己拆",
        "表前阀在哪里",
        "自闭阀有什么用",
        "{meter}能放柜子里吗",
        "晚上睡觉要不要关阀门",
        "用完{gas}要关总阀吗",
        "煤气罐放厨房安全吗",
    ],
    "out_of_scope": [
        "电费怎么交",
        "停水了",
        "快递到哪了",
        "订外卖",
        "明天下雨吗",
        "讲个笑话",
        "你几岁",
        "社保怎么交",
        "电表跳闸",
        "孩子上学报名",
        "医院挂号",
        "火车票怎么买",
        "帮我写作文",
        "股票会涨吗",
        "手机卡停机了",
        "信用卡还款",
        "银行卡被锁了",
        "身份证丢了怎么补",
        "驾照换证",
        "居住证怎么办",
        "养老金什么时候发",
        "下水道堵了",
        "猫丢了",
        "洗衣机不转",
    ],
}

# ----------------------------------------------------------------------------- wrappers and noise
PREFIXES = [
    "",
    "",
    "",
    "",
    "",
    "",
    "那个，",
    "就是，",
    "麻烦问一下，",
    "请问",
    "你好，",
    "您好，",
    "喂，",
    "哎，",
    "嗯，",
    "我想问问，",
    "咨询下，",
    "客服，",
    "师傅，",
    "俺家",
    "我跟你说，",
    "哎呀，",
    "急！",
    "打扰一下，",
    "我妈让我问，",
    "帮老人问一下，",
    "我是租户，",
    "那啥，",
    "老师，",
    "同志，",
]
STORIES = [
    "我家住老小区，楼龄二十多年了，",
    "我在外地上班，家里就老两口，",
    "刚下班回来，累了一天，",
    "是这样的，",
    "说来话长，我们家去年才搬过来，",
    "我家是顶楼，",
    "孩子放假在家，",
    "我一个人住，",
    "今天周末在家，",
    "我年纪大了不太会弄手机，",
    "之前打过电话了没说清楚，",
    "我们家刚装修完，",
    "我爸让我问一下，",
]
SUFFIXES = [
    "",
    "",
    "",
    "",
    "",
    "",
    "。",
    "？",
    "！",
    "！！",
    "吗",
    "啊",
    "呀",
    "呢",
    "哈",
    "谢谢",
    "谢谢啦",
    "麻烦了",
    "，急",
    "，在线等",
    "，咋整",
    "，咋办啊",
    "，怎么弄",
    "，嘎哈呢",
    "🙏",
    "😭",
    "😊",
    "👍",
    "~",
    "...",
    "，你们看看吧",
    "，尽快回复",
    "，谢谢了啊",
]
# Dialect / colloquial swaps applied to the core phrase.
DIALECT = [
    ("怎么", "咋"),
    ("什么", "啥子"),
    ("没有", "冇"),
    ("不知道", "不晓得"),
    ("钱", "钞票"),
    ("吗", "伐"),
    ("这个", "这个嘞"),
    ("什么", "啥"),
    ("怎么办", "咋整"),
    ("我家", "俺家"),
    ("我们", "咱们"),
    ("没有", "没"),
]
PUNCT_NOISE = ["，", " ", "。", "、", ""]


def _typo_swaps() -> list[tuple[str, str]]:
    """(right, wrong) pairs from the normaliser's typo table, so noise is exactly what we can undo."""
    path = DATA_DIR.parent / "lexicon" / "typos.txt"
    swaps = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            wrong, right = line.split("\t")
            if wrong != right:
                swaps.append((right, wrong))
    return swaps


_SLOT = re.compile(r"\{(\w+)\}")


def _fill(template: str, rng: random.Random) -> str:
    return _SLOT.sub(lambda m: rng.choice(V[m.group(1)]), template)


def _noisy(text: str, rng: random.Random, typos: list[tuple[str, str]]) -> str:
    if rng.random() < 0.25:
        for right, wrong in rng.sample(DIALECT, len(DIALECT)):
            if right in text:
                text = text.replace(right, wrong, 1)
                break
    if rng.random() < 0.2:
        for right, wrong in rng.sample(typos, len(typos)):
            if right in text:
                text = text.replace(right, wrong, 1)
                break
    if rng.random() < 0.1 and len(text) > 4:
        cut = rng.randrange(2, len(text) - 1)
        text = text[:cut] + rng.choice(PUNCT_NOISE) + text[cut:]
    if rng.random() < 0.1:
        text = text.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    if rng.random() < 0.12:  # voice input: no punctuation, words run on with fillers
        text = re.sub(r"[，。？！、,.?!]", " ", text)
        words = text.split()
        if words:
            words.insert(rng.randrange(len(words) + 1), rng.choice(["那个", "就是", "嗯", "呃", "然后"]))
        text = " ".join(words)
    return text


def variant(template: str, rng: random.Random, typos: list[tuple[str, str]]) -> str:
    core = _noisy(_fill(template, rng), rng, typos)
    roll = rng.random()
    if roll < 0.15:
        prefix = rng.choice(STORIES) + rng.choice(PREFIXES)
    else:
        prefix = rng.choice(PREFIXES)
    if prefix.startswith("俺家") and core.startswith(("我家", "俺家")):
        prefix = prefix[2:]
    return (prefix + core + rng.choice(SUFFIXES)).strip()


def generate(per_intent: int = PER_INTENT, seed: int = RANDOM_SEED) -> list[dict[str, str]]:
    rng = random.Random(seed)
    typos = _typo_swaps()
    rows: list[dict[str, str]] = []
    for intent in sorted(FAMILIES):
        templates = FAMILIES[intent]
        seen: set[str] = set()
        # Every template at least once in its plain form, then random wrapped variants.
        texts = [_fill(t, rng) for t in templates]
        attempts = 0
        while len(texts) < per_intent and attempts < per_intent * 20:
            attempts += 1
            texts.append(variant(templates[attempts % len(templates)], rng, typos))
        for text in texts:
            if text not in seen:
                seen.add(text)
                rows.append({"text": text, "intent": intent})
    return rows


def seed_rows() -> list[dict[str, str]]:
    """The hand-curated examples."""
    return [json.loads(line) for line in SEED_PATH.read_text(encoding="utf-8").splitlines() if line.strip()]


def training_text() -> str:
    """``train.jsonl`` as this script writes it: the seed, then the generated paraphrases not in the seed."""
    seed = seed_rows()
    known = {row["text"] for row in seed}
    rows = seed + [row for row in generate() if row["text"] not in known]
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def main() -> int:
    text = training_text()
    TRAIN_PATH.write_text(text, encoding="utf-8")
    rows, seed = text.count("\n"), len(seed_rows())
    print(
        f"wrote {rows} examples ({seed} seed + {rows - seed} generated) to {TRAIN_PATH}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
