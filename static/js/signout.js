/* Field CRM sign-out: with entries of this user still unsent, say so first and offer to
   send them, keep them on this phone, or stay. */
(() => {
  "use strict";
  const O = self.Offline;
  const { $, h, fill, plural } = self.Dom;

  // Sign out through `form`, for the user `userId`, with the page's `sender` (sync.js).
  async function signOut(form, { userId, sender }) {
    const go = async () => {
      await sender.stop();
      form.submit();
    };
    let mine = [];
    try {
      mine = (await O.entries()).filter((e) => e.userId === userId);
    } catch {
      return go();
    }
    if (!mine.length) return go();
    const box = $(".signout-warning", form) || h("div", { className: "signout-warning", role: "alert" });
    const tell = (text) => fill(box,
      h("p", { textContent: text }),
      h("p", { textContent: "Keep them on this phone and they are sent the next time you sign in here." }),
      h("div", { className: "actions" },
        h("button", { type: "button", className: "primary", textContent: "Send them now", onclick: send }),
        h("button", { type: "button", textContent: "Keep them and sign out", onclick: go }),
        h("button", { type: "button", textContent: "Cancel", onclick: () => box.remove() })));
    const send = async () => {
      await sender.sync();
      mine = (await O.entries()).filter((e) => e.userId === userId);
      if (!mine.length) return go();
      tell(`${plural(mine.length, "entry is", "entries are")} still not sent. ${$("#sync-status").textContent}`);
    };
    tell(`${plural(mine.length, "entry has", "entries have")} not been sent yet.`);
    form.append(box);
  }

  self.SignOut = Object.freeze({ signOut });
})();
