"""Rule layer that flags possible gas leaks; it overrides the classifier.

A missed leak can kill, a false alarm costs a phone call, so the rules lean towards firing. Sensory
cues (hissing, dizziness, fire) always fire. A smell fires unless it is explicitly denied ("没闻到味道") or
the whole message is a question about an imagined case ("万一以后闻到煤气味第一步该干啥", "为啥闻到燃气味
不能开灯") with nothing in it that says it is happening now.
Words that only *name* a leak (漏气, 泄漏) or an alarm going off are ignored inside a clause that is
plainly hypothetical or about prevention/detection in general ("万一漏气怎么办", "怎么检测漏气"), in such a
question ("一氧化碳中毒怎么急救", "怎么防煤气中毒"), and where they are denied ("不是漏气，是没气了").
"""

from __future__ import annotations

import re

from gasdesk.bot.nlu.normalize import normalize

# A smell, the commonest way a leak is noticed; checked after explicit denials are removed.
_SMELL = re.compile(
    "|".join(
        (
            r"(燃气|煤气|天然气|液化气|沼气|气|臭|怪|异|刺鼻的?)味",
            r"臭鸡蛋",
            r"闻到|闻着|能闻|闻见|刺鼻",
            r"[有一]股.{0,6}味",
            r"有(点|些)?(怪|臭|异)?味(道|儿)?",
            r"(怪怪?|臭|异|难闻|刺鼻|奇怪)的?(气味|味道|味儿|味)",
            r"味(道|儿)?(很|特别|有点|好|太|挺|比较|越来越)?(大|重|冲|浓|难闻|怪|不对|不正常)",
        )
    )
)

# Other sensory or emergency evidence of a present leak: fires regardless of context.
_SENSORY = re.compile(
    "|".join(
        (
            r"嘶嘶|呲呲|滋滋|丝丝|咝咝|哧哧|嗤嗤|(吱吱|呼呼).{0,3}(声|响)|漏气声|气流声",
            r"(头晕|头疼|头痛|恶心|想吐|胸闷|晕倒|昏迷).{0,12}(燃气|煤气|味)|(燃气|煤气|味).{0,12}(头晕|头疼|头痛|恶心|想吐|胸闷|晕倒|昏迷)",
            # A soap-water test that bubbles is a leak found, not a question about how to look for one.
            r"(肥皂水|肥皂沫|洗洁精|洗涤灵|泡沫)(?:(?![没不无]).){0,12}(冒泡|起泡|鼓泡|泡泡|吹泡)",
            r"爆炸|爆燃|起火|(?<![不没能])着火了|火苗.{0,3}窜|窜火|回火|关了.{0,4}火.{0,3}(还|没灭|不灭)",
        )
    )
)

# "没闻到什么味道" states the absence of a smell. Only tight, adjacent negations are removed, so
# "没多久就闻到煤气味" still counts as a smell.
_NEGATED_SMELL = re.compile(
    r"(并?没有?|也没有?|未|无)(闻到|闻见|闻着|发现|有)?(什么|任何|啥|一点|半点)?(异|怪|臭|刺鼻的?|燃气|煤气|天然气)?(气味|味道|味儿|味)"
    r"|闻不到.{0,4}味|(没|无)(异|怪)味"
)

# An alarm that is going off now (not one being bought or installed).
_ALARM = re.compile(r"(报警器|警报器|探测器|报警装置).{0,8}?(响|叫|鸣|滴滴|嘀嘀|哔哔|报警|闪|红灯)|报警声|警报声|警报响")

# Words naming a leak.
_LEAK_WORD = re.compile(
    r"漏气|泄漏|泄露|跑气|漏燃气|漏煤气|中毒|一氧化碳|冒气|往外冒气"
    r"|(燃气|煤气|天然气|气)(好像|似乎|可能|是不是|在|往外|有点)?漏(?![水电费])"
    r"|(管道|管子|燃气管|软管|胶管).{0,4}(断了|挖断|挖破|破了|裂了|爆了|裂开)"
    r"|(管子|管道|阀门|接口|接头|软管|胶管|燃气表|气表|灶|热水器|壁挂炉).{0,4}漏(?![水电费])"
    # A flame or valve that will not shut: gas keeps flowing.
    r"|(火|灶|阀|开关|旋钮).{0,8}(关不掉|关不上|关不住|灭不了|灭不掉|不熄|熄不了|熄不灭)"
    r"|关(了|上|掉|完).{0,6}(还|一直|仍然?|照样).{0,3}(着|烧|有火|冒火|出气)"
)
# Leak words that are about something else entirely.
_NOT_GAS = re.compile(r"轮胎|车胎|气球|充气|篮球|足球|自行车|电动车|空调")
# Heating pipes leak water, not gas: a bare pipe leak in a heating message is not a gas leak.
_HEATING_ONLY = re.compile(r"暖气|供暖|采暖|地暖|供热")
_GAS_CONTEXT = re.compile(r"燃气|煤气|天然气|液化气|漏气|泄漏|泄露|跑气")

# Clauses that talk about a leak without reporting one.
_GENERAL = re.compile(
    r"万一|如果|假如|要是|一旦|假设|以防|预防|防止|避免|防范|杜绝|平时|日常|注意事项|常识|知识|原因|宣传|演练|培训"
    r"|(怎么|如何|怎样|咋|什么方法|什么办法|用什么).{0,6}(检查|检测|判断|发现|知道|辨别|识别|自查|测|查)"
    r"|肥皂水|症状|有哪些表现"
)
_CLAUSE_SPLIT = re.compile(r"[,.!?;:，。！？；：\s]+")

# A question about an imagined case or about what one should do in general. It sets a smell or a leak word
# aside only where nothing in the message says the thing is happening now (_HAPPENING_NOW): "如果闻到煤气味怎么办"
# asks for knowledge, "如果闻到煤气味了怎么办" and "我爸一氧化碳中毒了怎么急救" do not.
_IMAGINED_CASE = re.compile(
    r"(万一|假如|假设|如果|要是|一旦).{0,16}(怎么办|怎么处理|如何处理|咋办|咋整|怎么做|该怎么|应该怎么|第一步|先做什么"
    r"|先干啥|该干啥|该做什么|要做什么|注意什么)"
    r"|为(什么|啥|何).{0,12}不(能|要|可以|让|准)"
    r"|急救|(怎么|如何|咋|怎样|有啥办法|有什么办法).{0,2}(预)?防"
)
_SUPPOSING = re.compile(r"万一|假如|假设|如果|要是|一旦|为什么|为啥|为何")
_HAPPENING_NOW = re.compile(r"现在|正在|刚才|刚刚|今天|已经|一直|还在|这会|赶紧|快来|救命|老是|总是|晕|昏|倒了|了(?!解)")
# Words that name a leak without reporting one: the product (燃气泄漏报警器, 漏气探测器), a wish to prevent one
# (防漏气) and a leak that is over (上次漏气, 漏气那次). They are taken out before the checks; "报警器" stays, so
# "燃气泄漏报警器响了" is still an alarm going off.
_NAMES_ONLY = re.compile(
    r"(泄漏|泄露|漏气)(?=报警|探测|检测仪)|防.{0,2}(漏气|泄漏|泄露)"
    r"|(上次|那次|上回|去年|以前|之前)的?(漏气|泄漏|泄露)|(漏气|泄漏|泄露)(那次|那回)"
    # someone else's, some time ago ("上个月楼上漏气差点出事"), a fear of one day, the news
    r"|(上个月|前阵子|前段时间|前几天|前些天|去年)(楼上|楼下|隔壁|邻居|对门)[^，,。！!？?\s]{0,8}(漏气|泄漏|泄露)"
    r"|(怕|担心|万一)哪天.{0,6}(漏气|泄漏|泄露)|(漏气|泄漏|泄露)的?时候?(能|会|可以)"
    r"|(新闻|报道|电视上|网上)[^，,。]{0,10}(爆炸|爆燃|起火)"
)
# What a device does ("一漏气就响", "闻到煤气会叫的那个"): taken out too, unless something in the message says
# it is happening now ("报警器一闻到煤气就会响，现在响个不停").
_DEVICE_DOES = re.compile(r"(闻到|闻见|漏气|泄漏|泄露|有味).{0,8}(就|会|能|自动)(叫|响|报警|关阀|切断|断气)(?!了)")
# "不是漏气，是没气了": a leak word the resident denies (not "是不是漏气", not a question "没漏气吧").
_DENIED_LEAK = re.compile(r"(现在|目前|暂时)?(?<!是)(不是|并不是|并非|没有|没)(漏气|泄漏|泄露|跑气)(?![吧吗呀啊？?])")


def _clause_reports_leak(clause: str, whole: str, imagined: bool) -> bool:
    """Leak or alarm words in one clause, unless the clause is hypothetical/general or, in a message about an
    imagined case (``imagined``), is that question itself."""
    alarm = _ALARM.search(clause)
    leak = _LEAK_WORD.search(_DENIED_LEAK.sub("，", clause))
    if leak and _NOT_GAS.search(clause):
        leak = None
    if leak and _HEATING_ONLY.search(whole) and not _GAS_CONTEXT.search(whole):
        leak = None
    if not (alarm or leak):
        return False
    return not (_GENERAL.search(clause) or (imagined and _IMAGINED_CASE.search(clause)))


def is_gas_leak(text: str) -> bool:
    """True when the message may describe a gas leak happening now. Errs on the side of True."""
    clean = _NAMES_ONLY.sub("", normalize(text))
    # A device's conditional ("漏气了会叫的那个") is set aside unless the rest of the message says "now".
    without_devices = _DEVICE_DOES.sub("", clean)
    if not _HAPPENING_NOW.search(_DENIED_LEAK.sub("", without_devices)):
        clean = without_devices
    if _SENSORY.search(clean):
        return True
    imagined = bool(_IMAGINED_CASE.search(clean)) and not _HAPPENING_NOW.search(clean)
    undenied = _NEGATED_SMELL.sub("，", clean)
    if _SMELL.search(undenied):
        # Set aside only where every clause with a smell supposes it: "家里有股味，万一是漏气怎么办" states one.
        smelly = [clause for clause in _CLAUSE_SPLIT.split(undenied) if _SMELL.search(clause)]
        if not (imagined and smelly and all(_SUPPOSING.search(clause) for clause in smelly)):
            return True
    return any(_clause_reports_leak(clause, clean, imagined) for clause in _CLAUSE_SPLIT.split(clean) if clause)
