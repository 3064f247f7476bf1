/* Field CRM offline search: contacts saved on this phone, found by name, company or phone
   digits with no signal, with accents folded as the server folds them ("orsted" finds
   Ørsted). */
(() => {
  "use strict";
  const O = self.Offline;
  const { h, fill, plural } = self.Dom;
  const LETTERS = { ø: "o", æ: "ae", œ: "oe", ł: "l", đ: "d", ð: "d", þ: "th", ß: "ss", ı: "i" };
  const fold = (s) => s.normalize("NFKD").replace(/\p{M}/gu, "").toLowerCase().replace(/[øæœłđðþßı]/g, (c) => LETTERS[c]);

  async function search(container, query) {
    const terms = fold(query).split(/\s+/).filter(Boolean);
    const found = (await O.library()).filter((c) => {
      const phone = (c.phone || "").replace(/\D/g, "");
      const hay = fold(`${c.name} ${c.company || ""} ${c.phone || ""} ${phone}`);
      return terms.every((t) => hay.includes(t) || (t.replace(/\D/g, "").length > 2 && phone.includes(t.replace(/\D/g, ""))));
    });
    const row = (c) => h("li", { className: "row" },
      h("a", { className: "row-main", href: c.url },
        h("span", { className: "row-title", textContent: c.name }),
        h("span", { className: "row-sub", textContent: c.company || "" })),
      c.phone ? h("a", { className: "button small call", href: `tel:${c.phone.replace(/\s/g, "")}`, textContent: "Call" }) : null);
    fill(container,
      h("p", { className: "offline-note", textContent: `No signal: ${plural(found.length, "contact", "contacts")} saved on this phone${query ? ` match “${query}”` : ""}.` }),
      found.length ? h("ul", { className: "rows" }, ...found.map(row)) : null);
  }

  self.Search = Object.freeze({ search });
})();
