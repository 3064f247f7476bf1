/* A mention's reply form: a ready reply goes in where the cursor is (tapped in the list,
   or typed as /code and a space), and a count of what is typed so far. The network's
   own count is the server's, made when the reply is sent. While the box holds a draft,
   the presence poll says so to others on the mention. */
(() => {
  "use strict";
  if (self.ReplyForm) return; // a boosted visit runs this file again: the listeners stay

  const box = () => document.getElementById("reply-body");
  const put = (area, text, from, to) => {
    area.setRangeText(text, from, to, "end");
    area.dispatchEvent(new Event("input", { bubbles: true }));
    area.focus();
  };

  document.addEventListener("click", (evt) => {
    const link = evt.target.closest("details.canned a[data-insert]");
    const area = box();
    if (!link || !area) return;
    evt.preventDefault();
    const at = area.selectionStart ?? area.value.length;
    const before = at > 0 && !/\s$/.test(area.value.slice(0, at)) ? " " : "";
    put(area, before + link.dataset.insert, at, area.selectionEnd ?? at);
  });

  document.addEventListener("input", (evt) => {
    const area = evt.target;
    if (area !== box()) return;
    const at = area.selectionStart;
    const typed = /(?:^|\s)\/([a-z0-9_-]{1,32}) $/.exec(area.value.slice(0, at));
    if (typed) {
      const link = document.querySelector(`details.canned a[data-code="${typed[1]}"]`);
      if (link) {
        const from = at - typed[1].length - 2;
        put(area, link.dataset.insert + " ", from, at);
        return;
      }
    }
    // Others on this mention see that a reply is being written while the box holds one.
    const doing = document.getElementById("presence-doing");
    if (doing) doing.value = area.value.trim() ? "replying" : "viewing";
    const count = document.getElementById("reply-count");
    const limit = Number(area.dataset.limit) || 0;
    if (count && limit) {
      const n = [...area.value.trim()].length;
      count.textContent = `${n} of ${limit} typed (${area.dataset.network || "the network"} counts it exactly when you send).`;
    }
  });

  self.ReplyForm = true;
})();
