// The deal-card action with useBuiltInInterface=Y: the frame is hidden and Bitrix24 draws the
// layout ClientHub passes (docs: api-reference/widgets/crm/detail-activity-area.md).
(function () {
  "use strict";
  if (typeof BX24 === "undefined") { return; }
  var form = document.getElementById("clienthub-reply");
  var layout = JSON.parse(document.getElementById("clienthub-layout").textContent);
  BX24.init(function () {
    var options = (BX24.placement.info() || {}).options || {};
    if (options.useBuiltInInterface !== "Y") { return; }
    var text = "";
    BX24.placement.call("setLayout", layout, function () {});
    BX24.placement.call("bindValueChangeCallback", "reply", function (e) { text = e.value || ""; });
    BX24.placement.call("bindSecondaryButtonClickCallback", null, function () {
      BX24.placement.call("finish");
    });
    BX24.placement.call("bindPrimaryButtonClickCallback", null, function () {
      if (!form) { return; }
      BX24.placement.call("lock");
      fetch(form.action, {
        method: "POST",
        headers: {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"},
        body: new URLSearchParams({token: form.elements.token.value, text: text})
      }).then(function (r) { return r.json(); }).then(function (res) {
        BX24.placement.call("unlock");
        if (res.error) {
          BX24.placement.call("setLayoutItemState", {id: "reply", properties: {errorText: res.error}});
        } else {
          BX24.placement.call("finish");
        }
      }).catch(function () { BX24.placement.call("unlock"); });
    });
  });
})();
