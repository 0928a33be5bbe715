// Live updates: when the server's change feed moves, fetch this page again and swap in its
// live part. The page is always rendered by the server; this script never builds markup.
(function () {
  "use strict";
  var live = document.querySelector("[data-live]");
  var state = document.getElementById("live-state");
  if (!live || !window.EventSource) { return; }
  var busy = false, again = false;
  function say(text) { if (state) { state.textContent = text; } }
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(window.location.href, {credentials: "same-origin", cache: "no-store"})
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-live]");
        if (fresh) { live.replaceChildren.apply(live, Array.prototype.slice.call(fresh.childNodes)); }
        document.dispatchEvent(new CustomEvent("promoter:updated"));
      })
      .catch(function () { say("update failed; retrying"); })
      .then(function () { busy = false; if (again) { again = false; refresh(); } });
  }
  var source = new EventSource("/events");
  source.addEventListener("hello", function () { say("live"); });
  source.addEventListener("changed", refresh);
  source.onerror = function () { say("reconnecting…"); };
}());
