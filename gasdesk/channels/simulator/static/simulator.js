/* The development simulator page: a WeChat follower talking to this server. */
(function () {
  "use strict";
  var key = "gasdesk.simulator.openid";
  var openid = localStorage.getItem(key);
  if (!openid) {
    openid = "oSIM" + Array.from(crypto.getRandomValues(new Uint8Array(12)), function (b) {
      return ("0" + b.toString(16)).slice(-2); }).join("");
    localStorage.setItem(key, openid);
  }
  document.getElementById("sim-openid").textContent = openid;
  document.getElementById("sim-h5").href = "/channels/wechat/h5?sim_openid=" + encodeURIComponent(openid);
  var log = document.getElementById("sim-log");
  var seen = 0;
  /** One bubble in a phone's log: `cls` me (sent) or oa (received), `kind` what it was. */
  function appendLine(list, cls, kind, text) {
    var li = document.createElement("li");
    li.className = cls;
    var k = document.createElement("span"); k.className = "k"; k.textContent = kind;
    li.appendChild(k); li.appendChild(document.createTextNode(text));
    list.appendChild(li); list.scrollTop = list.scrollHeight;
  }
  function line(cls, kind, text) { appendLine(log, cls, kind, text); }
  async function post(body) {
    var r = await fetch("/dev/simulator/wechat/send", { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" }, body: JSON.stringify(body) });
    var data = await r.json();
    if (data.reply) line("oa", "公众号被动回复", data.reply);
    else if (data.error) line("oa", "错误 " + data.status, data.error.message);
  }
  document.getElementById("sim-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var input = document.getElementById("sim-text");
    var text = input.value.trim();
    if (!text) return;
    input.value = "";
    line("me", "我", text);
    post({ openid: openid, text: text });
  });
  Array.prototype.forEach.call(document.querySelectorAll("[data-event]"), function (b) {
    b.addEventListener("click", function () {
      line("me", "事件", b.textContent);
      post({ openid: openid, event: b.dataset.event, event_key: b.dataset.key || null });
    });
  });
  async function poll() {
    try {
      var r = await fetch("/dev/simulator/wechat/inbox?openid=" + encodeURIComponent(openid), { headers: { Accept: "application/json" } });
      if (r.ok) {
        var data = await r.json();
        data.messages.slice(seen).forEach(function (m) {
          line("oa", m.kind === "template" ? "模板消息" : "客服消息", m.text);
        });
        seen = data.messages.length;
      }
    } finally { setTimeout(poll, 1500); }
  }
  poll();

  // ---------------------------------------------------------------- the SMS phone
  var smsLog = document.getElementById("sms-log");
  var smsSeen = 0;
  var phoneInput = document.getElementById("sms-phone");
  var savedPhone = localStorage.getItem("gasdesk.simulator.phone");
  if (savedPhone) phoneInput.value = savedPhone;
  phoneInput.addEventListener("change", function () {
    localStorage.setItem("gasdesk.simulator.phone", phoneInput.value.trim());
    smsLog.innerHTML = ""; smsSeen = 0;
  });
  function smsLine(cls, kind, text) { appendLine(smsLog, cls, kind, text); }
  document.getElementById("sms-form").addEventListener("submit", async function (e) {
    e.preventDefault();
    var input = document.getElementById("sms-text");
    var text = input.value.trim();
    if (!text) return;
    input.value = "";
    smsLine("me", "我", text);
    var r = await fetch("/dev/simulator/sms/send", { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify({ phone: phoneInput.value.trim(), text: text }) });
    var data = await r.json();
    if (data.error) smsLine("oa", "错误 " + data.status, data.error.message);
  });
  async function pollSms() {
    try {
      var phone = phoneInput.value.trim();
      if (phone.length >= 11) {
        var r = await fetch("/dev/simulator/sms/inbox", { method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", Accept: "application/json" }, body: JSON.stringify({ phone: phone }) });
        if (r.ok) {
          var data = await r.json();
          data.messages.slice(smsSeen).forEach(function (m) { smsLine("oa", "短信（" + m.kind + "）", m.text); });
          smsSeen = data.messages.length;
        }
      }
    } finally { setTimeout(pollSms, 1500); }
  }
  pollSms();
})();
