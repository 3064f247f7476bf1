/* Field CRM page helpers, shared by the page's scripts and holding no state: building
   elements, the page's own facts (the signed-in user, the kinds of entry as the server
   names them), and times shown in the phone's own zone and language. */
(() => {
  "use strict";
  const $ = (sel, root = document) => root.querySelector(sel);
  const kids = (list) => list.filter((k) => k != null && k !== false);
  const h = (tag, props, ...children) => {
    const el = Object.assign(document.createElement(tag), props);
    el.append(...kids(children));
    return el;
  };
  const fill = (el, ...children) => el.replaceChildren(...kids(children));
  // The kinds of entry and their names, as the server defines them.
  const KINDS = JSON.parse(($('meta[name="activity-kinds"]') || {}).content || "{}");
  const online = () => navigator.onLine;
  const signedIn = () => Number(($('meta[name="user-id"]') || {}).content) || null;
  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
  const uuid = () => (crypto.randomUUID ? crypto.randomUUID()
    : "10000000-1000-4000-8000-100000000000".replace(/[018]/g, (c) =>
      (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16)));

  // Times come from the server in UTC; show them in the phone's own zone and language.
  const local = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  const clock = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });
  const when = (iso) => {
    const d = new Date(iso);
    return (d.toDateString() === new Date().toDateString() ? clock : local).format(d);
  };
  const localTimes = () => {
    for (const t of document.querySelectorAll("time[datetime]:not([data-local])")) {
      t.textContent = local.format(new Date(t.dateTime));
      t.dataset.local = "";
    }
  };
  const ago = (iso) => {
    const m = Math.round((Date.now() - new Date(iso)) / 6e4);
    if (m < 1) return "just now";
    if (m < 60) return `${m} min ago`;
    return m < 2880 ? `${Math.round(m / 60)} h ago` : `${Math.round(m / 1440)} days ago`;
  };

  self.Dom = Object.freeze({ $, h, fill, KINDS, online, signedIn, plural, uuid, local, when, localTimes, ago });
})();
