/*! hpe.js: HPE's web snippet (served by HPE itself, no third-party CDN).
 *
 *   <script src="https://hpe.example.com/static/hpe.js" async
 *           data-hpe-key="hpe_pk_..." data-hpe-config="<configuration id>"
 *           data-hpe-user="<your user id, optional>"></script>
 *   <div data-hpe-slot="hero"></div>
 *
 * For each [data-hpe-slot] element it asks for a decision on the "web" channel (with a
 * publishable key: web decisions, and their impressions and clicks, only), renders the
 * chosen action's content.web ({title, text, image, href} or trusted html), reports an
 * "impression" when half of the slot is visible and a "click" when it is clicked, each
 * with the decision's outcome_token (a publishable key reports outcomes of the decisions
 * it was given only). Without data-hpe-user, an anonymous id is kept in localStorage
 * ("hpe_uid").
 *
 * Custom rendering: data-hpe-render="custom" on a slot skips rendering; listen for the
 * "hpe:decision" event (detail = the decision) and call HPE.track(decisionId, "click").
 * Values (a purchase amount) need a secret key: report them from your server.
 */
(function (window, document) {
  "use strict";
  if (window.HPE && window.HPE.version) return;

  var script = document.currentScript ||
    document.querySelector("script[data-hpe-key][data-hpe-config]");
  var cfg = {
    base: script ? new URL(script.src, document.baseURI).origin : "",
    key: script ? script.getAttribute("data-hpe-key") : null,
    config: script ? script.getAttribute("data-hpe-config") : null,
    user: script ? script.getAttribute("data-hpe-user") : null
  };
  var API = "/api/v1/041-hyper-personalization-engine/";

  function anonymousId() {
    try {
      var id = window.localStorage.getItem("hpe_uid");
      if (!id) {
        id = "anon-" + Math.random().toString(36).slice(2) + Date.now().toString(36);
        window.localStorage.setItem("hpe_uid", id);
      }
      return id;
    } catch (e) {
      return "anon-" + Math.random().toString(36).slice(2);
    }
  }

  function call(path, body, keepalive) {
    return window.fetch(cfg.base + API + cfg.config + path, {
      method: "POST",
      mode: "cors",
      credentials: "omit",
      keepalive: !!keepalive,
      headers: { "Authorization": "Bearer " + cfg.key, "Content-Type": "application/json" },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) throw new Error("HPE " + response.status + ": " + data.message);
        return data;
      });
    });
  }

  function decide(slot, context) {
    var ctx = { slot: slot, page_path: window.location.pathname,
                user_agent: window.navigator.userAgent };
    for (var k in context || {}) ctx[k] = context[k];
    return call("/decisions", { user_id: cfg.user || anonymousId(), channel: "web",
                                context: ctx }).then(function (decision) {
      if (decision.decision_id) tokens[decision.decision_id] = decision.outcome_token;
      return decision;
    });
  }

  var tokens = {};   // decision id -> its outcome_token (what lets this page report it)
  var tracked = {};
  function track(decisionId, type) {
    var key = decisionId + ":" + type;
    if (tracked[key]) return Promise.resolve(null);
    var token = tokens[decisionId];
    if (!token) {
      return Promise.reject(new Error("HPE: no decision " + decisionId + " on this page"));
    }
    tracked[key] = true;
    return call("/outcomes", { outcome_token: token, type: type }, true);
  }

  function render(el, decision) {
    var content = (decision.action && decision.action.content && decision.action.content.web) || {};
    if (content.html) { el.innerHTML = content.html; return; }  // trusted: set by the marketer
    var box = document.createElement(content.href ? "a" : "div");
    if (content.href) box.href = content.href;
    box.className = "hpe-offer";
    if (content.image) {
      var img = document.createElement("img");
      img.src = content.image; img.alt = content.title || "";
      box.appendChild(img);
    }
    if (content.title) {
      var title = document.createElement("strong");
      title.textContent = content.title;
      box.appendChild(title);
    }
    if (content.text) {
      var text = document.createElement("span");
      text.textContent = content.text;
      box.appendChild(text);
    }
    el.textContent = "";
    el.appendChild(box);
  }

  function watch(el, decisionId) {
    el.addEventListener("click", function () { track(decisionId, "click"); }, true);
    if (!("IntersectionObserver" in window)) { track(decisionId, "impression"); return; }
    var observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (entry.isIntersecting) { track(decisionId, "impression"); observer.disconnect(); }
      });
    }, { threshold: 0.5 });
    observer.observe(el);
  }

  function fill(el) {
    var slot = el.getAttribute("data-hpe-slot");
    var context = {};
    try { context = JSON.parse(el.getAttribute("data-hpe-context") || "{}"); } catch (e) {}
    return decide(slot, context).then(function (decision) {
      if (!decision.decision_id) {
        el.setAttribute("data-hpe-empty", decision.reason || "none");
        return decision;
      }
      el.setAttribute("data-hpe-decision", decision.decision_id);
      el.setAttribute("data-hpe-action", decision.action_id);
      if (el.getAttribute("data-hpe-render") !== "custom") render(el, decision);
      watch(el, decision.decision_id);
      el.dispatchEvent(new CustomEvent("hpe:decision", { detail: decision, bubbles: true }));
      return decision;
    }).catch(function (error) {
      el.setAttribute("data-hpe-error", String(error.message || error));
      if (window.console) window.console.warn(error);
    });
  }

  function init() {
    if (!cfg.key || !cfg.config) return Promise.resolve([]);
    var slots = document.querySelectorAll("[data-hpe-slot]");
    return Promise.all(Array.prototype.map.call(slots, fill));
  }

  window.HPE = { version: "1", decide: decide, track: track, init: init, config: cfg };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})(window, document);
