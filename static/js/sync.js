/* Field CRM sending: what waits in the outbox is sent now, on `online`, at every page load
   and again with a backoff; the service worker is registered here and asked to send with
   Background Sync, to save the rep's own contacts, and to go quiet before a sign-out. */
(() => {
  "use strict";
  const O = self.Offline;
  const { online, signedIn } = self.Dom;

  const worker = () => ("serviceWorker" in navigator ? navigator.serviceWorker.ready : Promise.reject());
  // Where the browser has Background Sync, the worker sends the outbox even if the app is closed.
  const background = () => worker().then((r) => r.sync && r.sync.register("outbox")).catch(() => {});
  const prefetch = () => worker().then((r) => r.active && r.active.postMessage("prefetch")).catch(() => {});

  // The worker forgets the saved pages and finishes what it has on the way.
  const workerQuiet = () => new Promise((resolve) => {
    const sw = navigator.serviceWorker && navigator.serviceWorker.controller;
    if (!sw) return resolve();
    const channel = new MessageChannel();
    channel.port1.onmessage = resolve;
    sw.postMessage("quiet", [channel.port2]);
    setTimeout(resolve, 5000);
  });

  // The page's one sender. ready(): the outbox works on this page; idle(): show what waits
  // when nothing can be sent; after(): show what is left once a batch is done.
  function sender({ ready, idle, after }) {
    let timer = null;
    let failures = 0;
    let due = false; // the backoff's own retry, not a tap or an event
    let running = null;
    let next = null;
    let leaving = false; // signing out: nothing more is sent from this page
    function sync() {
      if (!ready() || leaving || !signedIn() || !online()) return idle();
      // A batch under way may have started before the reason to send again: run one more.
      if (running) return (next ||= running.then(() => { next = null; return sync(); }));
      const retrying = due;
      due = false;
      running = (async () => {
        try {
          const { problem } = await O.flush();
          clearTimeout(timer);
          if (problem === "server" || problem === "offline") {
            // Only the backoff's own failures lengthen it, not each entry logged meanwhile.
            if (retrying || !failures) failures += 1;
            timer = setTimeout(() => { due = true; sync(); }, Math.min(300, 5 * 3 ** (failures - 1)) * 1000);
            background();
          } else {
            failures = 0;
          }
        } catch {
          // IndexedDB refused: the entries stay where they are, the bar says what waits.
        }
        running = null;
        await after();
      })();
      return running;
    }
    // Nothing may be on its way when a sign-out lands: a later answer would bring the
    // session's cookie back and undo it.
    async function stop() {
      leaving = true;
      clearTimeout(timer);
      await Promise.all([O.quiet().catch(() => {}), workerQuiet()]);
    }
    return Object.freeze({ sync, stop, stopped: () => leaving });
  }

  if ("serviceWorker" in navigator) {
    window.addEventListener("load", () => {
      navigator.serviceWorker.register("/sw.js").catch(() => {});
    });
  }

  self.Sync = Object.freeze({ sender, background, prefetch });
})();
