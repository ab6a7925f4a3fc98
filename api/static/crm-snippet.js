/*
 * Agentic CRM website snippet: records form fills and the page views of visitors who filled one.
 *
 *   <script src="https://crm.example.com/snippet.js" async
 *           data-endpoint="https://crm.example.com" data-source="website" data-site-key="site_..."></script>
 *
 * A form with an email field becomes a form_submit event (its other fields included, passwords
 * never); the address is remembered in this browser, and each later page view is sent as a
 * page_view for that contact. Anonymous visits are not sent. Add data-crm-ignore to a form to
 * leave it out. window.crm.identify(email) and window.crm.track(event) are there for your own code.
 * The site key is public: the CRM accepts only page views, downloads and form fills with it, and
 * only from the origins in CRM_API_CORS_ORIGINS.
 */
(function (window, document) {
  "use strict";
  var script = document.currentScript;
  var config = window.CRM_SNIPPET || {};
  function attr(name) { return script ? script.getAttribute(name) : null; }
  var endpoint = (config.endpoint || attr("data-endpoint") || "").replace(/\/+$/, "");
  var source = config.source || attr("data-source") || "website";
  var siteKey = config.siteKey || attr("data-site-key");
  var STORE = "crm_contact_email";
  var NAMES = { first_name: "first_name", firstname: "first_name", fname: "first_name",
                last_name: "last_name", lastname: "last_name", lname: "last_name",
                company: "company", organisation: "company", organization: "company", title: "title", job_title: "title" };
  if (!endpoint || !siteKey) { return; }

  function remembered() { try { return window.localStorage.getItem(STORE); } catch (e) { return null; } }
  function identify(email) { try { window.localStorage.setItem(STORE, email); } catch (e) { /* private mode */ } }
  function eventId() { return "web-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 12); }

  function track(event) {
    var body = { site_key: siteKey, event_id: eventId() };
    for (var key in event) { if (Object.prototype.hasOwnProperty.call(event, key)) { body[key] = event[key]; } }
    return fetch(endpoint + "/v1/collect/" + encodeURIComponent(source), {
      method: "POST", mode: "cors", credentials: "omit", keepalive: true,
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
    }).catch(function () { /* never break the page */ });
  }

  function onSubmit(e) {
    var form = e.target;
    if (!form || form.tagName !== "FORM" || form.hasAttribute("data-crm-ignore")) { return; }
    var email = null, fields = {}, top = {}, count = 0;
    for (var i = 0; i < form.elements.length; i++) {
      var el = form.elements[i];
      var name = el.name || el.id;
      if (!name || el.disabled || el.type === "password" || el.type === "file" || el.type === "submit" || el.type === "button") { continue; }
      if ((el.type === "checkbox" || el.type === "radio") && !el.checked) { continue; }
      var value = String(el.value || "").slice(0, 500);
      var key = name.toLowerCase();
      if (!email && (el.type === "email" || key === "email" || key === "e-mail")) { email = value.trim(); continue; }
      if (NAMES[key]) { top[NAMES[key]] = value; continue; }
      if (count < 50) { fields[name.slice(0, 100)] = value; count++; }
    }
    if (!email) { return; }
    identify(email);
    var event = { type: "form_submit", email: email, url: window.location.pathname + window.location.search, fields: fields };
    for (var k in top) { if (top[k]) { event[k] = top[k]; } }
    track(event);
  }

  document.addEventListener("submit", onSubmit, true);
  window.crm = { track: track, identify: identify };
  var known = remembered();
  if (known) { track({ type: "page_view", email: known, url: window.location.pathname + window.location.search }); }
})(window, document);
